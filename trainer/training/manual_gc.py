"""`gc.mode=manual`: Python's automatic collector off during training, collections on a step period.

An automatic collection pauses one rank at an unpredictable moment and every collective then waits for
it; collecting at the same optimizer steps on every rank makes the pauses short, aligned and visible.
"""

from __future__ import annotations

import gc
import logging
import time

import lightning as L

from trainer.config.period import fires
from trainer.training.step_hook import AfterOptimizerStep

log = logging.getLogger("trainer")


class ManualGc(AfterOptimizerStep):
    """Disables the collector when training starts, runs `gc.collect(generation)` after each optimizer
    step where `fires(every, step, last_step)`, and restores the collector's previous state when training
    ends or raises. The total pause is logged at the end so its cost can be compared with auto mode."""

    def __init__(self, every: int | str, generation: int, last_step: int) -> None:
        super().__init__()
        self.every = every
        self.generation = generation
        self.last_step = last_step
        self.collections = 0
        self.total_s = 0.0
        self.longest_s = 0.0
        self._restore: bool | None = None  # the collector's state before training; None = not active
        self._rank = 0

    def train_started(self, trainer: L.Trainer, step: int) -> None:
        self._rank = trainer.global_rank
        self._restore = gc.isenabled()
        gc.disable()

    def step_ended(self, trainer: L.Trainer, step: int) -> None:
        if not fires(self.every, step, self.last_step):
            return
        started = time.perf_counter()
        gc.collect(self.generation)
        seconds = time.perf_counter() - started
        self.collections += 1
        self.total_s += seconds
        self.longest_s = max(self.longest_s, seconds)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._finish()

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        # Lightning skips on_train_end when training raises; the caller's process must not be left
        # without automatic collection.
        self._finish()

    def _finish(self) -> None:
        if self._restore is None:
            return
        if self._restore:
            gc.enable()
        self._restore = None
        log.info(
            "manual GC (rank %d): %d collection(s) of generation <=%d, %.3f s in total, longest %.1f ms",
            self._rank,
            self.collections,
            self.generation,
            self.total_s,
            self.longest_s * 1000,
        )
