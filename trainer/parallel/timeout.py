"""`parallelism.step_timeout_s`: a short collective timeout once the first optimizer step has run.

The first step is slow for legitimate reasons (process-group setup, allocator warm-up, compilation), so
the process group starts with the generous `init_timeout_s`. After that a collective that takes minutes
means a rank has hung or died, and the run should fail fast instead of holding every GPU for 30 minutes.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import lightning as L
import torch
import torch.distributed as dist

log = logging.getLogger("trainer")


def collective_timeout() -> timedelta | None:
    """The default process group's current timeout (its first backend's), read from private
    torch attributes: only for logs and tests, None when there is no group or torch hides it."""
    if not (dist.is_available() and dist.is_initialized()):
        return None
    group = dist.distributed_c10d._get_default_group()
    for device in getattr(group, "_device_types", [torch.device("cpu")]):
        backend = group._get_backend(device)
        timeout = getattr(getattr(backend, "options", None), "_timeout", None)
        if isinstance(timeout, timedelta):
            return timeout
    return None


class StepTimeout(L.Callback):
    """Switches the default process group to `seconds` once the first optimizer step of this fit has
    run (also after a resume: that first step pays the same warm-up costs)."""

    def __init__(self, seconds: int) -> None:
        self.seconds = seconds
        self._first_step: int | None = None  # the step this fit started at, until the switch

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._first_step = trainer.global_step

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._first_step is None or trainer.global_step == self._first_step:
            return  # switched already, or still accumulating the first step's micro batches
        self._first_step = None
        if not (dist.is_available() and dist.is_initialized()):
            log.warning("parallelism.step_timeout_s: no process group to set a timeout on; ignored")
            return
        before = collective_timeout()
        dist.distributed_c10d._set_pg_timeout(timedelta(seconds=self.seconds), None)
        if trainer.is_global_zero:
            was = f"{before.total_seconds():g} s" if before is not None else "the init timeout"
            log.info(
                "collective timeout set to %d s after step %d (was %s, parallelism.step_timeout_s)",
                self.seconds,
                trainer.global_step,
                was,
            )
