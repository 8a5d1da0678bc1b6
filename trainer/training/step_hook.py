"""A Lightning callback base that acts once after each optimizer step.

Lightning's `on_train_batch_end` runs once per micro batch, so with gradient accumulation it runs several
times per optimizer step. Periodic actions are defined on optimizer steps (`fires(period, step, ...)`),
so the callbacks here watch `trainer.global_step` (optimizer steps completed) and act when it changes.
"""

from __future__ import annotations

from typing import Any

import lightning as L


class AfterOptimizerStep(L.Callback):
    """Calls `train_started(trainer, step)` once when fitting starts (step = the restored global step,
    0 for a fresh run) and `step_ended(trainer, step)` once after each optimizer step (1-based)."""

    def __init__(self) -> None:
        self._seen_step = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # A resumed run starts at its restored step: that step already ran in the previous process.
        self._seen_step = trainer.global_step
        self.train_started(trainer, self._seen_step)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if step != self._seen_step:
            self._seen_step = step
            self.step_ended(trainer, step)

    def train_started(self, trainer: L.Trainer, step: int) -> None:
        """Override: runs before the first batch of this fit."""

    def step_ended(self, trainer: L.Trainer, step: int) -> None:
        """Override: runs once after optimizer step `step` completed."""
