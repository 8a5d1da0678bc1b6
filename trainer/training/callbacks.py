"""Small Lightning callbacks: token throughput, a progress bar that counts steps."""

from __future__ import annotations

import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar


class TokenThroughput(L.Callback):
    """Logs `train/tokens_per_s` (non-padding input tokens over all ranks) every `every` optimizer steps.

    Counted here rather than with Lightning's ThroughputMonitor because batches have dynamic padding:
    only real tokens are counted, which is the number users compare across tools.
    """

    def __init__(self, every: int) -> None:
        self.every = every
        self.window_tokens = 0
        self.total_tokens = 0
        self.window_start = 0.0
        self.fit_start = 0.0
        self.train_seconds = 0.0
        self._last_step = -1

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.fit_start = self.window_start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        tokens = int(batch["real_tokens"].item()) * trainer.world_size  # every batch counts its own
        self.window_tokens += tokens
        self.total_tokens += tokens
        step = trainer.global_step
        if step != self._last_step and step % self.every == 0:
            now = time.perf_counter()
            rate = self.window_tokens / max(now - self.window_start, 1e-9)
            for logger in trainer.loggers:
                logger.log_metrics({"train/tokens_per_s": rate}, step=step)
            pl_module.log("tokens/s", rate, prog_bar=True, logger=False)
            self.window_tokens, self.window_start = 0, now
        self._last_step = step

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.train_seconds = time.perf_counter() - self.fit_start

    @property
    def mean_rate(self) -> float:
        return self.total_tokens / self.train_seconds if self.train_seconds else 0.0


class StepProgressBar(RichProgressBar):
    """Lightning's rich bar, labelled with the optimizer step out of the planned total: runs here are
    sized in steps, and Lightning's own label ("Epoch 2/-2") shows a meaningless bound when they are."""

    def _get_train_description(self, current_epoch: int) -> str:
        trainer = self.trainer
        total = trainer.max_steps if trainer.max_steps > 0 else "?"
        return f"epoch {current_epoch} step {trainer.global_step}/{total}"

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Lightning sets the label once per epoch; keep the step in it current."""
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if self.progress is not None and self.train_progress_bar_id is not None:
            label = self._get_train_description(trainer.current_epoch)
            self.progress.update(self.train_progress_bar_id, description=label)
