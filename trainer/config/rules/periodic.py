"""Rules on the periodic side actions: manual garbage collection and profiler windows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from trainer.config.period import enabled
from trainer.config.problems import Problem
from trainer.config.rules.training import Rule

if TYPE_CHECKING:
    from trainer.config.train import TrainConfig


def _manual_gc_needs_period(cfg: TrainConfig) -> Problem | None:
    gc = cfg.gc
    if gc.mode == "manual" and not enabled(gc.every):
        return Problem(
            "gc.every",
            gc.every,
            "gc.mode=manual turns the automatic collector off, so without a period nothing is collected",
            "set gc.every=N (e.g. 50), or gc.mode=auto",
        )
    if gc.mode == "auto" and enabled(gc.every):
        return Problem(
            "gc.every",
            gc.every,
            "has no effect with gc.mode=auto (Python collects on its own schedule)",
            "set gc.mode=manual, or gc.every=disable",
        )
    return None


def _profiler_windows_fit(cfg: TrainConfig) -> Iterator[Problem]:
    prof, steps = cfg.profiler, cfg.trainer.max_steps
    if isinstance(prof.every, int) and prof.window > prof.every:
        yield Problem(
            "profiler.every",
            prof.every,
            f"shorter than one profiling window (wait+warmup+active = {prof.window} steps), "
            "so windows overlap",
            f"use profiler.every>={prof.window}, or shorten profiler.wait/warmup/active",
        )
    if (
        isinstance(prof.every, int)
        and steps is not None
        and prof.every <= steps < prof.every + prof.window - 1
        and prof.window <= steps
    ):
        yield Problem(
            "profiler.every",
            prof.every,
            f"the first window would run to step {prof.every + prof.window - 1}, past the end of the run "
            f"(trainer.max_steps={steps}), so nothing is recorded",
            f"use profiler.every<={steps - prof.window + 1}, or profiler.every=last_step",
        )
    if enabled(prof.every) and steps is not None and prof.window > steps:
        yield Problem(
            "profiler.active",
            prof.active,
            f"a profiling window ({prof.window} steps) is longer than the run (trainer.max_steps={steps})",
            "lower profiler.wait/warmup/active, or train longer",
        )


def _profiler_options_need_profiler(cfg: TrainConfig) -> Problem | None:
    prof = cfg.profiler
    if enabled(prof.every):
        return None
    for key in ("memory_snapshot", "record_shapes", "profile_memory", "with_stack"):
        if getattr(prof, key):
            return Problem(
                f"profiler.{key}",
                True,
                "has no effect while profiler.every=disable",
                "set profiler.every=N or last_step to profile",
            )
    return None


def _memory_snapshot_needs_cuda(cfg: TrainConfig) -> Problem | None:
    if cfg.profiler.memory_snapshot and not cfg.on_gpu:
        return Problem(
            "profiler.memory_snapshot",
            True,
            "snapshots record the CUDA caching allocator; this run is on the CPU",
            "set profiler.memory_snapshot=false (profiler.profile_memory=true tracks CPU allocations)",
        )
    return None


RULES: tuple[Rule, ...] = (
    _manual_gc_needs_period,
    _profiler_windows_fit,
    _profiler_options_need_profiler,
    _memory_snapshot_needs_cuda,
)
