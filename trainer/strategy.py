"""The Lightning strategy for `parallelism` (stub: replaced by the strategies work)."""

from __future__ import annotations

from typing import Any

from trainer.config import TrainConfig


def build_strategy(cfg: TrainConfig) -> Any:
    return "ddp" if cfg.parallelism.strategy == "ddp" else "auto"
