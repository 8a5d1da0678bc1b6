"""`profiler:` torch.profiler windows (and CUDA memory snapshots) placed on optimizer steps by `fires`.

The schedule is a pure function of (config, step, last step), so tests check it step by step and the
windows land exactly where `profiler.every` says. A window is anchored at a step where `every` fires:
for an int period it starts there; for `last_step` it ends there (its last active step is the final
step). A window is `wait` steps NONE, `warmup` steps WARMUP, then `active` steps RECORD, the last one
RECORD_AND_SAVE. A window the run would cut short is not opened: a trace of fewer steps than asked for,
written only because training stopped, would be mistaken for a complete one.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import lightning as L
import torch
from torch.profiler import ProfilerAction, ProfilerActivity

from trainer.config.period import LAST_STEP, enabled, fires
from trainer.config.profiler import ProfilerConfig
from trainer.training.step_hook import AfterOptimizerStep

log = logging.getLogger("trainer")

Span = tuple[int, int]
"""The first and last optimizer step (1-based, inclusive) of one profiling window."""


def _ordinal(every: int | str, anchor: int) -> int:
    """Which window (1-based) the one anchored at `anchor` is: the count of steps up to it where `every`
    fires, in closed form because the schedule is evaluated at every step of long runs."""
    return 1 if every == LAST_STEP else anchor // int(every)


def window_of(prof: ProfilerConfig, step: int, last_step: int) -> Span | None:
    """The window optimizer step `step` falls in, or None: outside every window, in a window past
    `repeat`, or in one that would not end by `last_step`. Overlapping windows (rejected by the config
    rules) resolve to the later one."""
    if not enabled(prof.every) or not 1 <= step <= last_step:
        return None
    lead = prof.window - 1 if prof.every == LAST_STEP else 0  # from a window's first step to its anchor
    for offset in range(prof.window):
        first = step - offset
        if first < 1:
            return None
        anchor = first + lead
        if fires(prof.every, anchor, last_step):
            last = first + prof.window - 1
            if last > last_step or (prof.repeat and _ordinal(prof.every, anchor) > prof.repeat):
                return None
            return first, last
    return None


def profiler_action(prof: ProfilerConfig, step: int, last_step: int) -> ProfilerAction:
    """What the profiler does during optimizer step `step` (1-based)."""
    span = window_of(prof, step, last_step)
    if span is None:
        return ProfilerAction.NONE
    offset = step - span[0]
    if offset < prof.wait:
        return ProfilerAction.NONE
    if offset < prof.wait + prof.warmup:
        return ProfilerAction.WARMUP
    return ProfilerAction.RECORD_AND_SAVE if step == span[1] else ProfilerAction.RECORD


def make_schedule(
    prof: ProfilerConfig, last_step: int, start_step: int = 0
) -> Callable[[int], ProfilerAction]:
    """The `schedule` for `torch.profiler.profile`. torch numbers its own steps from 0 at `start()`, and
    calls `schedule(k)` for the region between its k-th and (k+1)-th `step()`: with `step()` called after
    each optimizer step of a fit that starts at global step `start_step`, that is optimizer step
    `start_step + k + 1`."""

    def schedule(k: int) -> ProfilerAction:
        return profiler_action(prof, start_step + k + 1, last_step)

    return schedule


def windows(prof: ProfilerConfig, last_step: int, start_step: int = 0) -> Iterator[Span]:
    """The windows a fit from `start_step` to `last_step` records, in order (a scan: for logs and tests)."""
    step = start_step + 1
    while step <= last_step:
        span = window_of(prof, step, last_step)
        if span is None:
            step += 1
            continue
        if span[0] == step:
            yield span
        step = span[1] + 1


def trace_name(step: int, rank: int) -> str:
    """`.pt.trace.json` so TensorBoard's profiler plugin finds it; Perfetto and chrome://tracing open it."""
    return f"trace-step{step}-rank{rank}.pt.trace.json"


def snapshot_name(step: int, rank: int) -> str:
    return f"memory-step{step}-rank{rank}.pickle"


class ProfilerWindows(AfterOptimizerStep):
    """Drives `torch.profiler.profile` over the fit: started with training, stepped once per optimizer
    step, stopped at the end or on an exception (so the process is not left with a live profiler).
    Every rank writes its own traces into `folder`; with `memory_snapshot`, CUDA allocator history is
    recorded over each window and dumped at its end (and at an exception inside one, e.g. an OOM)."""

    def __init__(self, prof: ProfilerConfig, folder: Path, last_step: int, cuda: bool) -> None:
        super().__init__()
        self.prof = prof
        self.folder = folder
        self.last_step = last_step
        self.cuda = cuda
        self.written: list[Path] = []
        self._profiler: torch.profiler.profile | None = None
        self._step = 0  # the optimizer step whose end is being handled (names the files)
        self._rank = 0
        self._recording_memory = False

    def train_started(self, trainer: L.Trainer, step: int) -> None:
        self._rank, self._step = trainer.global_rank, step
        self.folder.mkdir(parents=True, exist_ok=True)
        planned = next(windows(self.prof, self.last_step, step), None)
        if planned is None:
            log.warning(
                "profiler.every=%s: no complete profiling window fits in steps %d-%d; nothing is recorded",
                self.prof.every,
                step + 1,
                self.last_step,
            )
            return
        # Each window is its own trace by design; torch warns about exactly that from the second window on.
        warnings.filterwarnings("ignore", message=".*Profiler clears events at the end of each cycle.*")
        activities = [ProfilerActivity.CPU]
        if self.cuda and torch.cuda.is_available():
            activities.append(ProfilerActivity.CUDA)
        self._profiler = torch.profiler.profile(
            activities=activities,
            schedule=make_schedule(self.prof, self.last_step, step),
            on_trace_ready=self._write_trace,
            record_shapes=self.prof.record_shapes,
            profile_memory=self.prof.profile_memory,
            with_stack=self.prof.with_stack,
        )
        self._profiler.start()
        if trainer.is_global_zero:
            log.info("profiler: first window steps %d-%d, traces in %s", *planned, self.folder)
        self._memory_window_starts(step + 1)

    def step_ended(self, trainer: L.Trainer, step: int) -> None:
        if self._profiler is None:
            return
        self._step = step
        self._profiler.step()  # writes the trace when `step` ended a window
        span = window_of(self.prof, step, self.last_step)
        if span is not None and span[1] == step:
            self._dump_memory(step)
        self._memory_window_starts(step + 1)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._close()

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        # Files written now (a partial trace, a snapshot of e.g. an OOM) are named after the step that
        # failed: the one after the last completed step.
        self._step += 1
        if self._recording_memory:
            self._guarded(self._dump_memory, self._step)
        self._guarded(self._close)

    def _close(self) -> None:
        if self._recording_memory:
            torch.cuda.memory._record_memory_history(enabled=None)
            self._recording_memory = False
        profiler, self._profiler = self._profiler, None
        if profiler is not None:
            profiler.stop()  # windows always end by last_step, so this writes nothing on a normal end

    def _guarded(self, action: Callable[..., None], *args: int) -> None:
        """Cleanup while an exception propagates must not replace that exception with its own."""
        try:
            action(*args)
        except Exception as err:  # logged: the training error matters more
            log.warning("profiler cleanup after the training error failed: %s", err)

    def _write_trace(self, profiler: torch.profiler.profile) -> None:
        path = self.folder / trace_name(self._step, self._rank)
        profiler.export_chrome_trace(str(path))
        self.written.append(path)
        log.info("profiler trace up to step %d: %s (%.1f MB)", self._step, path, path.stat().st_size / 1e6)

    def _memory_window_starts(self, step: int) -> None:
        """Start CUDA allocator history when optimizer step `step` is the first of a window."""
        if not self.prof.memory_snapshot or self._recording_memory:
            return
        span = window_of(self.prof, step, self.last_step)
        if span is not None and span[0] == step:
            # Bounded so a long window cannot grow the history (and the file) without limit.
            torch.cuda.memory._record_memory_history(max_entries=100_000)
            self._recording_memory = True

    def _dump_memory(self, step: int) -> None:
        if not self._recording_memory:
            return
        path = self.folder / snapshot_name(step, self._rank)
        torch.cuda.memory._dump_snapshot(str(path))
        torch.cuda.memory._record_memory_history(enabled=None)
        self._recording_memory = False
        self.written.append(path)
        log.info("CUDA memory snapshot up to step %d: %s (open at pytorch.org/memory_viz)", step, path)
