"""Periodic side actions during training, as Lightning callbacks built from the validated config.

Each one acts once per optimizer step (step_hook.py) and decides with `fires` whether its period
is due, so manual GC, profiler windows and validation/checkpoint periods all count steps the same way.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L

from trainer.config import TrainConfig
from trainer.config.period import enabled
from trainer.training.manual_gc import ManualGc
from trainer.training.profiler import ProfilerWindows


def side_callbacks(cfg: TrainConfig, run_dir: Path, last_step: int) -> list[L.Callback]:
    """Manual GC and profiler windows, each only when configured (the strategy adds its own callbacks,
    e.g. the post-first-step collective timeout: trainer/parallel/).

    GC comes before the profiler so that a collection is part of the profiled step it follows."""
    callbacks: list[L.Callback] = []
    if cfg.gc.mode == "manual":
        callbacks.append(ManualGc(cfg.gc.every, cfg.gc.generation, last_step))
    if enabled(cfg.profiler.every):
        folder = run_dir / cfg.profiler.dir
        callbacks.append(ProfilerWindows(cfg.profiler, folder, last_step, cuda=cfg.on_gpu))
    return callbacks
