"""What each checkpoint records about the run that wrote it, and what a resume checks against it.

Why: resuming `run.name=long` with a changed model or with LoRA added failed after data preparation
with an 80-line traceback (and, before `StepCheckpoint`, wrote a broken checkpoint over the good one).
Every checkpoint now carries the training-relevant config (a `RunRecord` callback's state, which
Lightning stores in the checkpoint), its hash and the library versions. Before anything is prepared,
a resume compares: keys that change what is trained (model, data, optimizer, schedule, batch
arithmetic, parallelism, precision, seed) must match, or the run refuses with the list of differences
and the switch that allows it (`run.resume_changed=allow`). The step budget, periods, logging,
tracking, launcher and loader settings may change freely. A run whose checkpoint already reached
`trainer.max_steps` says it is complete instead of training zero steps again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import lightning as L
import torch

from trainer.config import TrainConfig
from trainer.config.flat import flatten
from trainer.errors import UserError, first_line

log = logging.getLogger("trainer")

# Keys (and key prefixes ending in a dot) that may differ between a checkpoint and its resume.
FREE = (
    "run.",
    "tracker.",
    "launcher.",
    "hardware.",
    "infer.",
    "gc.",
    "profiler.",
    "trainer.max_steps",
    "trainer.max_epochs",
    "trainer.val_every",
    "trainer.val_at_start",
    "trainer.log_every",
    "trainer.checkpoint_every",
    "trainer.save_last",
    "trainer.keep_last",
    "trainer.keep_best",
    "trainer.best_metric",
    "trainer.save_on_exception",
    "trainer.threads",
    "trainer.progress_bar",
    "trainer.export_model",
    "trainer.export_max_shard_size",
    "trainer.deterministic",
    "trainer.cudnn_benchmark",
    "data.cache",
    "data.cache_dir",
    "data.num_proc",
    "data.eval_batch",
    "data.num_workers",
    "data.pin_memory",
    "data.persistent_workers",
    "data.prefetch_factor",
)
BOUND = ("run.seed",)  # under a free prefix, but it orders data and initialises weights
_PATH = re.compile(r"data\.(datasets|validation)\.[^.]+\.path")  # a moved file: the cache key checks content
LIBRARIES = ("torch", "lightning", "transformers", "peft", "trainer")


def _free(key: str) -> bool:
    if key in BOUND:
        return False
    prefixed = any(key == f or (f.endswith(".") and key.startswith(f)) for f in FREE)
    return prefixed or bool(_PATH.fullmatch(key))


def training_keys(cfg: TrainConfig) -> dict[str, Any]:
    """The dotted keys whose values decide what is trained."""
    return {k: v for k, v in flatten(cfg.model_dump(mode="json")).items() if not _free(k)}


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def describe(cfg: TrainConfig, data_key: str | None) -> dict[str, Any]:
    keys = training_keys(cfg)
    blob = json.dumps(keys, sort_keys=True, default=str).encode()
    config_hash = hashlib.sha256(blob).hexdigest()[:16]
    return {"config": keys, "config_hash": config_hash, "data_key": data_key, "versions": _versions()}


class RunRecord(L.Callback):
    """Puts `describe(cfg)` into every checkpoint (Lightning saves a callback's `state_dict`), with the
    scalar metrics of the moment: what a rerun of a complete run reports."""

    def __init__(self, cfg: TrainConfig, data_key: str | None) -> None:
        self.record = describe(cfg, data_key)
        self._trainer: L.Trainer | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._trainer = trainer

    def state_dict(self) -> dict[str, Any]:
        metrics = self._trainer.callback_metrics if self._trainer is not None else {}
        scalars = {k: float(v) for k, v in metrics.items() if getattr(v, "numel", lambda: 1)() == 1}
        return {**self.record, "metrics": scalars}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        pass  # the record describes the checkpoint; this run's own record is what it will save


@dataclass(frozen=True)
class Saved:
    """What a checkpoint says about itself, read without loading its tensors."""

    step: int
    record: dict[str, Any] | None  # None: written before checkpoints carried a record

    @property
    def metrics(self) -> dict[str, float]:
        return dict((self.record or {}).get("metrics", {}))


def read_saved(path: Path) -> Saved | None:
    """The step and record of a checkpoint file (or a sharded folder's `meta.pt`); None when it has
    neither (DeepSpeed folders keep theirs elsewhere: not checked)."""
    file = path / "meta.pt" if path.is_dir() else path
    if not file.is_file():
        return None
    try:
        ckpt = torch.load(file, map_location="cpu", mmap=not path.is_dir(), weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same user-facing problem
        raise UserError(
            f"checkpoint {file} cannot be read: {first_line(err)}",
            hint="use another checkpoint (run.resume=PATH) or start over with run.resume=none",
        ) from None
    record = ckpt.get("callbacks", {}).get(RunRecord.__qualname__)
    return Saved(int(ckpt.get("global_step", 0)), record)


def differences(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    lines = []
    for key in sorted(set(before) | set(now)):
        old, new = before.get(key, "(absent)"), now.get(key, "(absent)")
        if old != new:
            lines.append(f"{key}: {json.dumps(old, default=str)} -> {json.dumps(new, default=str)}")
    return lines


def check_resume(cfg: TrainConfig, checkpoint: str) -> Saved | None:
    """Refuse a resume whose training config differs from the checkpoint's (unless allowed); warn about
    changed library versions. Returns what the checkpoint says (its step), or None if unreadable."""
    saved = read_saved(Path(checkpoint))
    if saved is None or saved.record is None:
        return saved
    changed = differences(saved.record["config"], training_keys(cfg))
    if changed and cfg.run.resume_changed != "allow":
        shown = changed[:12] + ([f"... and {len(changed) - 12} more"] if len(changed) > 12 else [])
        raise UserError(
            f"run.resume: this config differs from the one checkpoint {checkpoint} (step {saved.step}) "
            "was trained with:\n    " + "\n    ".join(shown),
            hint="run the original command again, start a new run (another run.name, or run.resume=none), "
            "or resume anyway with run.resume_changed=allow",
        )
    if changed:
        log.warning("resuming with a changed config (run.resume_changed=allow): %s", "; ".join(changed))
    versions = saved.record.get("versions", {})
    moved = {k: (v, _versions().get(k)) for k, v in versions.items() if _versions().get(k) != v}
    if moved:
        log.warning(
            "checkpoint written with other library versions: %s",
            ", ".join(f"{k} {a} -> {b}" for k, (a, b) in moved.items()),
        )
    return saved


def check_data(cfg: TrainConfig, saved: Saved | None, data_key: str | None) -> None:
    """Refuse a resume whose training data changed since the checkpoint (the cache key covers every
    file's content; a file edited after the checkpoint would silently change the data order)."""
    before = (saved.record or {}).get("data_key") if saved is not None else None
    if not before or not data_key or before == data_key or cfg.run.resume_changed == "allow":
        return
    raise UserError(
        f"run.resume: the training data changed since the checkpoint (step {saved.step}) was written "
        f"(data key {before} -> {data_key}): a data file was edited or replaced",
        hint="put the original data back, start a new run (another run.name, or run.resume=none), "
        "or resume anyway with run.resume_changed=allow",
    )
