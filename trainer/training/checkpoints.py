"""Checkpoints: the periodic ones (newest `keep_last`), the `keep_best` by a validation metric, how a
single-file checkpoint is written (atomically), and which checkpoint a fit resumes from (`run.resume`:
the newest complete one)."""

from __future__ import annotations

import functools
import logging
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from trainer.config import TrainConfig
from trainer.config.period import every_n
from trainer.errors import UserError
from trainer.parallel.atomic import restore_interrupted

log = logging.getLogger("trainer")

FOLDER = "checkpoints"
LAST = "last.ckpt"


def checkpoint_callbacks(cfg: TrainConfig, run_dir: Path, last_step: int) -> list[ModelCheckpoint]:
    """Periods become Lightning's step intervals through `every_n`, the same arithmetic `fires` uses."""
    loop = cfg.trainer
    checkpoint = functools.partial(StepCheckpoint, dirpath=run_dir / FOLDER, auto_insert_metric_name=False)
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


class StepCheckpoint(ModelCheckpoint):
    """Lightning's checkpoint callback, except that a checkpoint on an exception is only written when
    this process trained a step: a resume that failed while loading (a changed model, LoRA added) wrote
    its half-built state over `last.ckpt`, and the original command could no longer resume."""

    _first_step: int | None = None

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        super().on_train_start(trainer, pl_module)
        self._first_step = trainer.global_step

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if self._first_step is None or trainer.global_step <= self._first_step:
            return
        super().on_exception(trainer, pl_module, exception)


def last_checkpoint(run_dir: Path) -> Path:
    return run_dir / FOLDER / LAST


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes `<name>.partial-<pid>` beside the target, fsyncs it, then renames it over the target.

    Why: Lightning's own save goes through a temporary file in the system temp folder and moves it into
    place; when that folder is on another filesystem (local /tmp, shared output disk) the move is a copy,
    and a kill or a full disk mid-copy left `last.ckpt` truncated. A rename inside one folder is atomic:
    the target is either the old checkpoint or the new one, whole.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
        try:
            with open(partial, "wb") as f:
                writer = _Writes(f, target)
                try:
                    torch.save(checkpoint, writer)
                except RuntimeError:
                    if writer.error is not None:  # torch's writer hides the OSError behind its own
                        raise writer.error from None
                    raise
                f.flush()
                os.fsync(f.fileno())
            os.replace(partial, target)
        except OSError as err:
            if err.filename is None:  # a flush or the close (a full disk) names no file: this one
                raise OSError(err.errno, err.strerror, str(target)) from None
            raise
        finally:
            partial.unlink(missing_ok=True)
        folder = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(folder)  # the rename itself survives a power loss
        finally:
            os.close(folder)


class _Writes:
    """A file as torch.save sees it, keeping the OSError a write raised (a full disk): torch turns it
    into "unexpected pos 704 vs 598", which names neither the cause nor the file."""

    def __init__(self, f: Any, target: Path) -> None:
        self.f, self.target = f, target
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self.f.write(data)
        except OSError as err:
            self.error = OSError(err.errno, err.strerror, str(self.target))
            raise

    def flush(self) -> None:
        self.f.flush()


def complete(path: Path) -> bool:
    """A checkpoint that can be loaded as far as its framing goes: a single file whose zip directory
    (written last by torch.save) reads, or a sharded folder with what its writer writes last."""
    if path.is_dir():  # torch.distributed.checkpoint writes .metadata last, DeepSpeed its `latest`
        return (path / ".metadata").is_file() or (path / "latest").is_file()
    try:
        with zipfile.ZipFile(path) as z:
            return bool(z.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def _newest_first(run_dir: Path) -> list[Path]:
    """last.ckpt and the periodic checkpoints, the most recently written first (a kill inside the save
    of last.ckpt leaves the older last.ckpt beside a newer periodic one); last.ckpt first on a tie."""
    folder = run_dir / FOLDER
    found = [p for p in folder.glob("step-*.ckpt") if re.fullmatch(r"step-(\d+)(?:-v\d+)?\.ckpt", p.name)]
    last = last_checkpoint(run_dir)
    if last.exists():
        found.insert(0, last)
    return sorted(found, key=lambda p: p.stat().st_mtime_ns, reverse=True)


def sweep_partials(run_dir: Path) -> list[Path]:
    """What saves that a kill interrupted left (the run folder's lock is held: no live process writes
    them): `*.partial-<pid>` files deleted, sharded checkpoints moved aside put back."""
    folder = run_dir / FOLDER
    left = sorted(folder.glob("*.partial-*"))
    for p in left:
        p.unlink(missing_ok=True)
    return left + restore_interrupted(folder)


def resume_checkpoint(cfg: TrainConfig, run_dir: Path) -> str | None:
    """`run.resume`: auto continues from the newest complete checkpoint of this run folder (a truncated
    or empty one, left by a kill or a full disk, is passed over with a warning); a named checkpoint
    that cannot be loaded is a one-line error."""
    if cfg.run.resume == "none":
        return None
    if cfg.run.resume == "auto":
        for candidate in _newest_first(run_dir):
            if complete(candidate):
                return str(candidate)
            log.warning("checkpoint %s is incomplete (truncated or empty): not resuming from it", candidate)
        return None
    named = Path(cfg.run.resume)
    if not complete(named):
        raise UserError(
            f"run.resume={named}: not a complete checkpoint (truncated, empty or not a checkpoint)",
            hint=f"use another checkpoint of {named.parent}, or run.resume=auto (the newest complete one)",
        )
    return cfg.run.resume
