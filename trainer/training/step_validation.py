"""Validation after optimizer steps, decided on the step rather than on a count of micro batches.

Why: Lightning validates every `val_check_interval` training batches, and we passed it `val_every x
grad_accum`. With gradient accumulation that count drifts from the optimizer step: Lightning also steps
on the partial accumulation window at the end of an epoch (trainer/config/steps.py). Measured with
accumulation 2 and 37 micro batches an epoch: the validation "after step 20" ran after the first micro
batch of step 21, and a run of 20 steps never validated at step 20; with accumulation 4 it ran after
step 21 and was logged there. Here validation runs at the batch that completes an optimizer step
`fires(trainer.val_every, ...)` names, like every other periodic action.

Lightning has no hook for this decision; its training epoch loop asks `_should_check_val_fx`, both after
each batch and, on a restart, to tell whether the checkpointed batch was a validation point. The loop is
replaced the way Lightning's Trainer installs its own (`fit_loop.epoch_loop = ...`). Without
accumulation it decides exactly as Lightning did: every batch steps, and batch count = step.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.loops.training_epoch_loop import _TrainingEpochLoop

from trainer.config.period import fires


class StepValidationLoop(_TrainingEpochLoop):
    def __init__(self, trainer: L.Trainer, period: int | str, last_step: int) -> None:
        super().__init__(trainer, min_steps=trainer.fit_loop.min_steps, max_steps=trainer.fit_loop.max_steps)
        self.period = period
        self.last_step = last_step

    def _should_check_val_fx(self, data_fetcher: Any) -> bool:
        if not self._should_check_val_epoch():
            return False
        if self.trainer.should_stop and self.trainer.fit_loop._can_stop_early:
            return True  # Lightning's own rule: a run asked to stop (early stopping) validates first
        return not self._should_accumulate() and fires(self.period, self.global_step, self.last_step)


def validate_after_steps(trainer: L.Trainer, period: int | str, last_step: int) -> None:
    """Make `trainer` validate after the optimizer steps at which `period` fires."""
    trainer.fit_loop.epoch_loop = StepValidationLoop(trainer, period, last_step)
