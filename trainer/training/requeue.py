"""Requeue on Slurm: the one owner of "the time is running out" (trainer/launch/slurm.py asks for it).

Why ours and not Lightning's auto-requeue: Lightning saves its checkpoint inside the signal handler,
wherever the step happens to be (between a backward and its optimizer step, mid-accumulation), into a
file our resume does not read. Here the handler only raises a flag. At the next optimizer-step boundary
the ranks agree (any rank signalled = all stop: Slurm may deliver to them a step apart) and the regular
`checkpoints/last.ckpt` is written the way every checkpoint is; before the next batch (once the step's
metrics are logged) rank 0 runs `scontrol requeue`, and the
process ends without exporting or closing the MLflow run. The requeued job composes the same command in
the same run folder, `run.resume=auto` continues from that checkpoint (exactly: the data order is a
function of the step), and the tracker continues the same MLflow run.

Signals: SIGUSR2 (`--signal=USR2@N` before the time limit, or `scancel -s USR2`) checkpoints and
requeues; SIGTERM (preemption, `scancel`) checkpoints and ends, and Slurm requeues a preempted job
itself. Hydra's submitit launcher sends USR2 too, so sweeps on Slurm take the same path.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from typing import Any

import lightning as L
import torch

log = logging.getLogger("trainer")

_NONE, _STOP, _REQUEUE = 0, 1, 2


class SlurmRequeue(L.Callback):
    """Installs the handlers at the start of training; acts at optimizer-step boundaries only."""

    def __init__(self, checkpoint: Path, requeue: bool = True) -> None:
        self.checkpoint = checkpoint
        self.requeue = requeue
        self._asked = _NONE  # what the signal handler asked for
        self._leaving = _NONE  # what the ranks agreed on, checkpoint written
        self._last_step = -1

    def _handler(self, signum: int, frame: Any) -> None:
        wanted = _REQUEUE if signum == signal.SIGUSR2 and self.requeue else _STOP
        self._asked = max(self._asked, wanted)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        signal.signal(signal.SIGUSR2, self._handler)
        signal.signal(signal.SIGTERM, self._handler)
        self._last_step = trainer.global_step

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """At an optimizer-step boundary: agree, and checkpoint the way every checkpoint is written."""
        step = trainer.global_step
        if step == self._last_step:  # mid-accumulation: not a boundary
            return
        self._last_step = step
        asked = self._agreed(trainer)
        if asked == _NONE or step >= (trainer.max_steps if trainer.max_steps > 0 else step + 1):
            return
        trainer.save_checkpoint(self.checkpoint)
        self._leaving = asked

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """Leave before the next batch: by now the last step's metrics are logged (at its batch end
        they are not yet, and would be lost)."""
        if self._leaving == _NONE:
            return
        step, job = trainer.global_step, os.environ.get("SLURM_JOB_ID", "")
        if self._leaving == _REQUEUE and trainer.is_global_zero and job:
            from trainer.launch.slurm import requeue

            requeue(job)
        what = "requeued" if self._leaving == _REQUEUE else "stopped"
        log.info("%s at step %d: checkpoint %s (Slurm job %s)", what, step, self.checkpoint, job)
        print(f"[trainer] {what} at step {step}: checkpoint {self.checkpoint}", flush=True)
        logging.shutdown()
        # No export, no end panel, no closing of the MLflow run: the requeued job continues all three.
        os._exit(0 if self._leaving == _REQUEUE else 143)

    def _agreed(self, trainer: L.Trainer) -> int:
        """The strongest request on any rank (one small all-reduce per optimizer step when distributed)."""
        if trainer.world_size == 1:
            return self._asked
        flag = torch.tensor(self._asked, device=trainer.strategy.root_device)
        return int(trainer.strategy.reduce(flag, reduce_op="max").item())


def slurm_requeue(cfg: Any, run_dir: Path) -> tuple[list[L.Callback], list[Any]]:
    """The requeue callback and Lightning's SLURM environment with its own requeue off, for a
    `launcher=slurm` run inside its job; nothing otherwise (Lightning keeps its defaults)."""
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    from trainer.config.hardware import in_slurm_step
    from trainer.training.checkpoints import last_checkpoint

    if cfg.launcher.kind != "slurm" or not in_slurm_step():
        return [], []
    plugins = [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else []
    return [SlurmRequeue(last_checkpoint(run_dir), requeue=cfg.launcher.requeue)], plugins
