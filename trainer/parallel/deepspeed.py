"""`parallelism=deepspeed`: DeepSpeed ZeRO stage 1/2/3 through Lightning's DeepSpeedStrategy (CUDA only).

The JSON config is a pure function of the validated config (`deepspeed_config`), so that the exact dict
can be fed to a raw `deepspeed.initialize` on a CPU machine (tests/test_strategies.py): Lightning's
strategy refuses CPUs, so that is the only way the config itself is exercised without a GPU. DeepSpeed
clips gradients itself (from `gradient_clipping`), and ZeRO-3 gathers the full weights for export.
"""

from __future__ import annotations

import warnings
from typing import Any

import lightning as L
import torch

from trainer.config import TrainConfig
from trainer.parallel.atomic import whole_saves
from trainer.parallel.base import Distributed
from trainer.parallel.layers import strip_module_prefix

# DeepSpeed's names for `communication_data_type` (deepspeed/runtime/config.py).
COMM_DTYPES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}

# Lightning's own fp16 defaults (DeepSpeedStrategy.__init__): dynamic loss scaling from 2**16.
FP16_LOSS_SCALING = {
    "loss_scale": 0,
    "initial_scale_power": 16,
    "loss_scale_window": 1000,
    "hysteresis": 2,
    "min_loss_scale": 1,
}


def _zero_section(cfg: TrainConfig) -> dict[str, Any]:
    p = cfg.parallelism
    zero: dict[str, Any] = {
        "stage": p.stage,
        "overlap_comm": p.overlap_comm,
        "contiguous_gradients": True,
        "allgather_partitions": True,
        "reduce_scatter": True,
        "allgather_bucket_size": p.bucket_size,
        "reduce_bucket_size": p.bucket_size,
    }
    if p.stage == 3:
        # Stage 3 gathers parameters layer by layer ahead of use; `allgather_bucket_size` is stage 1/2 only.
        zero["stage3_prefetch_bucket_size"] = p.bucket_size
    if p.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    if p.offload_params:
        zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    return zero


def _precision_sections(precision: str) -> dict[str, Any]:
    """DeepSpeed runs its own mixed precision: the module is cast and an fp32 master copy kept."""
    if precision.startswith("bf16"):
        return {"bf16": {"enabled": True}}
    if precision.startswith("16"):
        return {"fp16": {"enabled": True, **FP16_LOSS_SCALING}}
    return {}


def deepspeed_config(cfg: TrainConfig) -> dict[str, Any]:
    """The whole config; `cfg.parallelism` must be the DeepSpeed variant.

    `gradient_accumulation_steps` is included so that the dict stands alone for `deepspeed.initialize`;
    Lightning insists on setting it itself (from `accumulate_grad_batches`), so the strategy drops it.
    """
    p = cfg.parallelism
    if p.strategy != "deepspeed":
        raise ValueError(f"deepspeed_config needs parallelism.strategy=deepspeed, got {p.strategy}")
    config: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": cfg.data.micro_batch,
        "gradient_accumulation_steps": cfg.grad_accum,
        # DeepSpeed clips by the global 2-norm itself (the rules reject any other norm type); 0 = off.
        "gradient_clipping": cfg.trainer.gradient_clip or 0.0,
        "zero_optimization": _zero_section(cfg),
        # The optimizer is ours (trainer/models/optim.py), a plain torch one, not a DeepSpeed-built one.
        "zero_allow_untested_optimizer": True,
        **_precision_sections(cfg.precision),
    }
    if p.offload_optimizer:
        # DeepSpeed otherwise refuses a client optimizer with ZeRO-Offload (it wants DeepSpeedCPUAdam).
        config["zero_force_ds_cpu_optimizer"] = False
    if p.reduce_dtype is not None:
        config["communication_data_type"] = COMM_DTYPES[p.reduce_dtype]
    return config


class DeepSpeed(Distributed):
    def strategy(self) -> Any:
        from lightning.pytorch.strategies import DeepSpeedStrategy

        config = deepspeed_config(self.cfg)
        # Lightning raises if the config sets this; it fills it from `accumulate_grad_batches` (the same).
        config.pop("gradient_accumulation_steps")
        return whole_saves(DeepSpeedStrategy)(config=config, timeout=self.timeout)

    def before_model(self, module: L.LightningModule) -> None:
        # The module leaves clipping to DeepSpeed (clip_gradients below), but Lightning warns whenever
        # the hook is overridden.
        warnings.filterwarnings("ignore", message=".*DeepSpeed handles gradient clipping internally.*")
        if self.p.stage == 3:
            # Lightning builds the model inside `deepspeed.zero.Init`, which partitions parameters as
            # they are created; transformers loads pretrained weights into partitioned parameters only
            # when it knows the DeepSpeed config, which it holds by weak reference: keep it alive here.
            from transformers.integrations import HfDeepSpeedConfig

            self._hf_deepspeed_config = HfDeepSpeedConfig(module.trainer.strategy.config)

    def clip_gradients(
        self, trainer: L.Trainer, optimizer: torch.optim.Optimizer, max_norm: float | None, norm_type: float
    ) -> torch.Tensor | None:
        """The engine clips by its config's `gradient_clipping`; the gradients here are its partitions."""
        return None

    def full_state_dict(self, trainer: L.Trainer) -> dict[str, torch.Tensor] | None:
        strategy = trainer.strategy
        if not strategy.zero_stage_3:
            return None
        # Gathers one layer at a time onto rank 0 (the same call accelerate's get_state_dict uses).
        state = strategy.deepspeed_engine._zero3_consolidated_16bit_state_dict()
        return strip_module_prefix(state) if state is not None else {}
