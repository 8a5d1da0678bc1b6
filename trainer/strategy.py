"""The Lightning strategy for `parallelism`: one builder per `parallelism.strategy`.

What each choice becomes:
- single: "auto" (Lightning picks the one device);
- ddp: `DDPStrategy`, with a gradient-compression comm hook when `reduce_dtype` asks for one;
- fsdp version 2: `ModelParallelStrategy` (data parallel only); the `fully_shard` calls themselves are
  made by the module as it builds the model (trainer/models/sharding.py), as Lightning requires;
- fsdp version 1: Lightning's `FSDPStrategy` (CUDA only), each decoder layer its own FSDP unit;
- deepspeed: `DeepSpeedStrategy` (CUDA only) with the config from trainer/deepspeed_config.py.
The config rules have already rejected combinations this machine cannot run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import torch

from trainer.config import TrainConfig
from trainer.config.parallelism import DDP, FSDP, DeepSpeed
from trainer.errors import UserError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _timeout(p: DDP | FSDP | DeepSpeed) -> timedelta:
    """Process-group setup and the first step get `init_timeout_s` (loading a large model can be slow)."""
    return timedelta(seconds=p.init_timeout_s)


def _half_precision_weights(cfg: TrainConfig) -> bool:
    """Whether gradients come out in 16 bits: weights stored in 16 bits rather than autocast over fp32."""
    return cfg.precision == "bf16-true" or cfg.model.dtype != "float32"


def fp32_reduce_hook(process_group, bucket):
    """DDP comm hook: all-reduce 16-bit gradients in fp32 (then cast back), for `reduce_dtype=float32`.

    Torch ships hooks that reduce in fewer bits (fp16/bf16 compression), none that reduce in more.
    Unannotated on purpose: DDP compares a hook's annotations with the real classes, and under
    `from __future__ import annotations` they would be strings, which it rejects.
    """
    import torch.distributed as dist

    group = process_group if process_group is not None else dist.group.WORLD
    buffer = bucket.buffer()
    wide = buffer.to(torch.float32).div_(group.size())

    def narrow(fut: Any) -> torch.Tensor:
        return buffer.copy_(fut.value()[0])

    return dist.all_reduce(wide, group=group, async_op=True).get_future().then(narrow)


def ddp_comm_hook(cfg: TrainConfig) -> Callable[..., Any] | None:
    """The DDP comm hook that makes gradients all-reduce in `reduce_dtype` (None: DDP's own all-reduce)."""
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

    dtype = cfg.parallelism.reduce_dtype
    if dtype == "float16":
        return default_hooks.fp16_compress_hook
    if dtype == "bfloat16":
        # torch's DDP refuses this hook unless torch is a CUDA build with NCCL >= 2.10 (checked in
        # DistributedDataParallel._check_comm_hook): on a CPU-only install it cannot run under gloo.
        if not cfg.on_gpu:
            raise UserError(
                "parallelism.reduce_dtype=bfloat16: DDP's bf16 gradient compression needs CUDA and NCCL; "
                "this run is on the CPU",
                hint="use parallelism.reduce_dtype=float16 or null on the CPU (or parallelism=fsdp)",
            )
        return default_hooks.bf16_compress_hook
    if dtype == "float32" and _half_precision_weights(cfg):
        return fp32_reduce_hook
    return None  # float32 gradients already reduce in float32


def _ddp(cfg: TrainConfig, p: DDP) -> Any:
    from lightning.pytorch.strategies import DDPStrategy

    return DDPStrategy(
        timeout=_timeout(p),
        find_unused_parameters=p.find_unused_parameters,
        ddp_comm_hook=ddp_comm_hook(cfg),
    )


def _fsdp2(p: FSDP) -> Any:
    from lightning.pytorch.strategies import ModelParallelStrategy

    # Lightning builds a (data_parallel, tensor_parallel) mesh whose product must be the world size, so
    # pure FSDP2 is data_parallel = every process on every node.
    return ModelParallelStrategy(
        data_parallel_size=p.world_size,
        tensor_parallel_size=1,
        save_distributed_checkpoint=p.sharded_checkpoint,
        timeout=_timeout(p),
    )


def _fsdp1_mixed_precision(cfg: TrainConfig, reduce_dtype: str) -> Any:
    """Lightning's own FSDP1 policy for the precision (FSDPPrecision), with only the reduce dtype changed:
    passing `mixed_precision` replaces that policy whole."""
    from torch.distributed.fsdp import MixedPrecision

    compute = {"bf16": torch.bfloat16, "16": torch.float16}.get(cfg.precision.split("-")[0], torch.float32)
    return MixedPrecision(param_dtype=compute, reduce_dtype=DTYPES[reduce_dtype], buffer_dtype=compute)


def _fsdp1(cfg: TrainConfig, p: FSDP) -> Any:
    from lightning.pytorch.strategies import FSDPStrategy

    from trainer.models.sharding import DecoderLayerWrapPolicy

    return FSDPStrategy(
        auto_wrap_policy=DecoderLayerWrapPolicy(),
        cpu_offload=p.cpu_offload,
        sharding_strategy="FULL_SHARD" if p.reshard_after_forward else "SHARD_GRAD_OP",
        mixed_precision=_fsdp1_mixed_precision(cfg, p.reduce_dtype) if p.reduce_dtype else None,
        state_dict_type="sharded" if p.sharded_checkpoint else "full",
        timeout=_timeout(p),
    )


def _deepspeed(cfg: TrainConfig, p: DeepSpeed) -> Any:
    from lightning.pytorch.strategies import DeepSpeedStrategy

    from trainer.deepspeed_config import deepspeed_config

    config = deepspeed_config(cfg)
    # Lightning raises if the config sets this; it fills it from `accumulate_grad_batches` (the same value).
    config.pop("gradient_accumulation_steps")
    return DeepSpeedStrategy(config=config, timeout=_timeout(p))


def build_strategy(cfg: TrainConfig) -> Any:
    """A Lightning strategy object, or "auto" for one device."""
    p = cfg.parallelism
    if isinstance(p, DDP):
        return _ddp(cfg, p)
    if isinstance(p, FSDP):
        return _fsdp2(p) if p.version == 2 else _fsdp1(cfg, p)
    if isinstance(p, DeepSpeed):
        return _deepspeed(cfg, p)
    return "auto"
