"""What a signal does to a run: stop cleanly (SIGINT, SIGTERM) or, on Slurm, requeue (SIGUSR2).

Why not Lightning's handling: Lightning saves its auto-requeue checkpoint inside the signal handler,
wherever the step happens to be (between a backward and its optimizer step, mid-accumulation), into a
file our resume does not read, and a SIGTERM during training ended the process with status 0. Here a
handler only raises a flag. At the next optimizer-step boundary the ranks agree (any rank signalled =
all stop: signals may reach them a step apart) and the regular `checkpoints/last.ckpt` is written the
way every checkpoint is. Before the next batch (once the step's metrics are logged) the run leaves:

- SIGINT (Ctrl-C) / SIGTERM (`kill`, preemption, `scancel`): the MLflow run is marked KILLED and the
  process exits 130 / 143; the same command resumes from the checkpoint. A second Ctrl-C stops at once.
  Slurm requeues a preempted job itself.
- SIGUSR2 on Slurm (`--signal=USR2@N` before the time limit, `scancel -s USR2`, submitit's signal):
  rank 0 runs `scontrol requeue` and the process exits 0 without exporting or closing the MLflow run;
  the requeued job composes the same command in the same run folder, resumes from the checkpoint
  (exactly: the data order is a function of the step) and continues the same MLflow run. Lightning's
  own SIGUSR1 auto-requeue is switched off: one owner.
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

_NONE, _INT, _TERM, _REQUEUE = 0, 1, 2, 3  # the strongest request wins when ranks disagree
_EXIT = {_INT: 130, _TERM: 143, _REQUEUE: 0}
_NAMES = {_INT: "SIGINT", _TERM: "SIGTERM", _REQUEUE: "SIGUSR2"}


class SignalStop(L.Callback):
    """Installs the handlers at the start of training; acts at optimizer-step boundaries only."""

    def __init__(self, checkpoint: Path, requeue: bool) -> None:
        self.checkpoint = checkpoint
        self.requeue = requeue  # SIGUSR2 requeues (a launcher=slurm run inside its job)
        self._asked = _NONE  # what a signal handler asked for
        self._leaving = _NONE  # what the ranks agreed on, checkpoint written
        self._last_step = -1

    def _handler(self, signum: int, frame: Any) -> None:
        wanted = {signal.SIGINT: _INT, signal.SIGTERM: _TERM}.get(signum, _REQUEUE)
        if signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C stops at once
            print("\n[trainer] stopping at the end of this step (Ctrl-C again to stop now)", flush=True)
        self._asked = max(self._asked, wanted)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        signal.signal(signal.SIGINT, self._handler)
        signal.signal(signal.SIGTERM, self._handler)
        if self.requeue:
            signal.signal(signal.SIGUSR2, self._handler)
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
        if self._leaving == _REQUEUE:
            if trainer.is_global_zero and job:
                from trainer.launch.slurm import requeue

                requeue(job)
            what = f"requeued (Slurm job {job})"
        else:
            if trainer.is_global_zero:
                for logger in trainer.loggers:
                    logger.finalize("KILLED")
            what = f"stopped by {_NAMES[self._leaving]}; the same command resumes"
        log.warning("%s at step %d: checkpoint %s", what, step, self.checkpoint)
        print(f"[trainer] {what} at step {step}: checkpoint {self.checkpoint}", flush=True)
        logging.shutdown()
        # No export and no end panel; a requeued run also leaves its MLflow run open to continue it.
        os._exit(_EXIT[self._leaving])

    def _agreed(self, trainer: L.Trainer) -> int:
        """The strongest request on any rank (one small all-reduce per optimizer step when distributed)."""
        if trainer.world_size == 1:
            return self._asked
        flag = torch.tensor(self._asked, device=trainer.strategy.root_device)
        return int(trainer.strategy.reduce(flag, reduce_op="max").item())


def signal_handling(cfg: Any, run_dir: Path) -> tuple[list[L.Callback], list[Any]]:
    """The stop/requeue callback, and for a `launcher=slurm` run inside its job Lightning's SLURM
    environment with its own requeue off."""
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    from trainer.config.hardware import in_slurm_step
    from trainer.training.checkpoints import last_checkpoint

    on_slurm = cfg.launcher.kind == "slurm" and in_slurm_step()
    plugins = [SLURMEnvironment(auto_requeue=False)] if on_slurm and SLURMEnvironment.detect() else []
    requeue = on_slurm and cfg.launcher.requeue
    return [SignalStop(last_checkpoint(run_dir), requeue=requeue)], plugins
