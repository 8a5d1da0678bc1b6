"""Checkpoints: the periodic ones (newest `keep_last`), the `keep_best` by a validation metric, and
which checkpoint a fit resumes from (`run.resume`)."""

from __future__ import annotations

import functools
from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint

from trainer.config import TrainConfig
from trainer.config.period import every_n

FOLDER = "checkpoints"
LAST = "last.ckpt"


def checkpoint_callbacks(cfg: TrainConfig, run_dir: Path, last_step: int) -> list[ModelCheckpoint]:
    """Periods become Lightning's step intervals through `every_n`, the same arithmetic `fires` uses."""
    loop = cfg.trainer
    checkpoint = functools.partial(ModelCheckpoint, dirpath=run_dir / FOLDER, auto_insert_metric_name=False)
    callbacks = []
    every = every_n(loop.checkpoint_every, last_step)
    if every or loop.save_last:
        callbacks.append(
            checkpoint(
                filename="step-{step:06d}",
                every_n_train_steps=every,
                # Lightning only prunes to k with a monitor: "step" (max) keeps the k newest.
                monitor="step" if loop.keep_last else None,
                mode="max",
                save_top_k=(loop.keep_last or -1) if every else 0,
                save_last=loop.save_last,
                save_on_exception=loop.save_on_exception,
            )
        )
    if loop.keep_best:
        callbacks.append(
            checkpoint(
                filename="best-step-{step:06d}",
                monitor=loop.best_metric,
                mode=loop.best_mode,
                save_top_k=loop.keep_best,
                save_on_train_epoch_end=False,
            )
        )
    return callbacks


def last_checkpoint(run_dir: Path) -> Path:
    return run_dir / FOLDER / LAST


def resume_checkpoint(cfg: TrainConfig, run_dir: Path) -> str | None:
    """`run.resume`: auto continues from this run folder's last checkpoint when there is one."""
    if cfg.run.resume == "none":
        return None
    if cfg.run.resume == "auto":
        last = last_checkpoint(run_dir)
        return str(last) if last.exists() else None
    return cfg.run.resume
