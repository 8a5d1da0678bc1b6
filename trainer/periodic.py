"""Periodic side actions during training (stub: replaced by the GC / profiler / timeout work)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainer.config import TrainConfig


def side_callbacks(cfg: TrainConfig, run_dir: Path, last_step: int) -> list[Any]:
    return []
