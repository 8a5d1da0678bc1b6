"""Progress that shows without a terminal: one plain line every `trainer.log_every` optimizer steps.

Why: in a Slurm log, under nohup or in a pipe, Lightning's rich bar draws nothing, and the run printed
nothing between its start and end panels. Each line goes to <run>/train.log always and to stdout when it
is not a terminal (trainer.console.progress), rank 0 only:

    step 120/1200 (10%)  loss 1.2345  lr 1.98e-03  5,812 tokens/s  elapsed 0:00:21  eta 0:03:09
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import lightning as L

from trainer.console import progress


def _clock(seconds: float) -> str:
    return str(timedelta(seconds=round(max(seconds, 0.0))))


class ProgressLog(L.Callback):
    def __init__(self, every: int, total: int, throughput: Any) -> None:
        self.every = every
        self.total = total
        self.throughput = throughput  # the TrainMetrics callback: tokens/s over the run so far
        self._start = 0.0
        self._first_step = 0
        self._last_step = -1

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()
        self._first_step = self._last_step = trainer.global_step  # a resumed run starts mid-way

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if step == self._last_step or not (step % self.every == 0 or step == self.total):
            return
        self._last_step = step
        if not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics
        elapsed = time.perf_counter() - self._start
        done = step - self._first_step
        eta = elapsed / done * (self.total - step) if done else 0.0
        parts = [f"step {step}/{self.total} ({step / self.total:.0%})"]
        if "train/loss" in metrics:
            parts.append(f"loss {float(metrics['train/loss']):.4f}")
        if "train/lr" in metrics:
            parts.append(f"lr {float(metrics['train/lr']):.2e}")
        tokens = self.throughput.total_tokens
        parts.append(f"{tokens / elapsed if elapsed else 0:,.0f} tokens/s")
        parts.append(f"elapsed {_clock(elapsed)}  eta {_clock(eta)}")
        progress("  ".join(parts))
