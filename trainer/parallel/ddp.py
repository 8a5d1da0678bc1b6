"""`parallelism=ddp`: one process per device, gradients all-reduced by DDP.

`reduce_dtype` picks a DDP communication hook: torch's fp16/bf16 compression hooks, or ours for fp32
reduction of 16-bit gradients (torch ships hooks that reduce in fewer bits, none that reduce in more).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from trainer.errors import UserError
from trainer.parallel.base import Distributed


def fp32_reduce_hook(process_group, bucket):
    """DDP comm hook: all-reduce 16-bit gradients in fp32 (then cast back), for `reduce_dtype=float32`.

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


class Ddp(Distributed):
    def strategy(self) -> Any:
        from lightning.pytorch.strategies import DDPStrategy

        return DDPStrategy(
            timeout=self.timeout,
            find_unused_parameters=self.p.find_unused_parameters,
            ddp_comm_hook=self.comm_hook(),
        )

    def _half_precision_gradients(self) -> bool:
        """Gradients come out in 16 bits when weights are stored in 16 bits (not autocast over fp32)."""
        return self.cfg.precision == "bf16-true" or self.cfg.model.dtype != "float32"

    def comm_hook(self) -> Callable[..., Any] | None:
        """The hook that makes gradients all-reduce in `reduce_dtype` (None: DDP's own all-reduce)."""
        from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

        dtype = self.p.reduce_dtype
        if dtype == "float16":
            return default_hooks.fp16_compress_hook
        if dtype == "bfloat16":
            # torch's DDP refuses this hook unless torch is a CUDA build with NCCL >= 2.10 (checked in
            # DistributedDataParallel._check_comm_hook): on a CPU-only install it cannot run under gloo.
            if not self.cfg.on_gpu:
                raise UserError(
                    "parallelism.reduce_dtype=bfloat16: DDP's bf16 gradient compression needs CUDA and "
                    "NCCL; this run is on the CPU",
                    hint="use parallelism.reduce_dtype=float16 or null on the CPU (or parallelism=fsdp)",
                )
            return default_hooks.bf16_compress_hook
        if dtype == "float32" and self._half_precision_gradients():
            return fp32_reduce_hook
        return None  # float32 gradients already reduce in float32
