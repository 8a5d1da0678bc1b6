"""Small Lightning callbacks: the training metrics of each logged step, a progress bar that counts steps."""

from __future__ import annotations

import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar

from trainer.training.step_hook import AfterOptimizerStep


class TrainMetrics(AfterOptimizerStep):
    """Every `every` optimizer steps, sends the loggers the training metrics of step N at step N (in one
    call: one line of metrics.jsonl): what the module logged for it (`train/loss`, `train/lr`,
    `train/grad_norm`) and `train/tokens_per_s` since the last logged step.

    Sent here, not by Lightning's logger connector, which labels step N's values N - 1 and, after a
    resume from a checkpoint taken at a validation step, logs one step early (module.py). Placed before
    the checkpoint callbacks, so a kill while step N's checkpoint is written loses no point of step N.

    Tokens are counted here rather than with Lightning's ThroughputMonitor because batches have dynamic
    padding: only real tokens (over all ranks) are counted, the number users compare across tools.
    """

    def __init__(self, every: int) -> None:
        super().__init__()
        self.every = every
        self.window_tokens = 0
        self.total_tokens = 0
        self.window_start = 0.0
        self.fit_start = 0.0
        self.train_seconds = 0.0

    def train_started(self, trainer: L.Trainer, step: int) -> None:
        self.fit_start = self.window_start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        tokens = int(batch["real_tokens"].item()) * trainer.world_size  # every batch counts its own
        self.window_tokens += tokens
        self.total_tokens += tokens
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)  # then step_ended

    def step_ended(self, trainer: L.Trainer, step: int) -> None:
        if step % self.every:
            return
        now = time.perf_counter()
        rate = self.window_tokens / max(now - self.window_start, 1e-9)
        self.window_tokens, self.window_start = 0, now
        trainer.lightning_module.log("tokens/s", rate, prog_bar=True, logger=False)
        logged = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")}
        for logger in trainer.loggers:
            logger.log_metrics({**logged, "train/tokens_per_s": rate}, step=step)

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

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        """Without Lightning's `v_num`, its loggers' versions joined (the end of the MLflow run id, `_0`
        of metrics.jsonl): it names nothing a user looks for; the start panel shows the run id."""
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return items

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Lightning sets the label once per epoch; keep the step in it current."""
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if self.progress is not None and self.train_progress_bar_id is not None:
            label = self._get_train_description(trainer.current_epoch)
            self.progress.update(self.train_progress_bar_id, description=label)
