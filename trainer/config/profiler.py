"""`profiler:` the PyTorch profiler and CUDA memory snapshots (keys in trainer/conf/train.yaml).

A profiling window opens at each step where `every` fires (for last_step: so that it ends on the final
step). Inside a window the profiler waits `wait` steps, warms up `warmup` steps, records `active` steps,
and writes a trace that TensorBoard or chrome://tracing / Perfetto opens. At most `repeat` windows are
recorded (0 = every time the period fires).
"""

from __future__ import annotations

from pydantic import Field, NonNegativeInt, PositiveInt

from trainer.config.base import StrictModel
from trainer.config.period import Period


class ProfilerConfig(StrictModel):
    every: Period = Field(
        "disable", description="Open a profiling window every N steps, at last_step, or disable."
    )
    wait: NonNegativeInt = Field(1, description="Steps skipped at the start of a window.")
    warmup: NonNegativeInt = Field(1, description="Steps profiled but discarded (the profiler warms up).")
    active: PositiveInt = Field(3, description="Steps recorded in each window.")
    repeat: NonNegativeInt = Field(1, description="Windows recorded at most; 0 = every time `every` fires.")
    dir: str = Field("profiler", description="Traces folder, relative to the run folder.")
    record_shapes: bool = Field(False, description="Record operator input shapes.")
    profile_memory: bool = Field(False, description="Track tensor allocations per operator.")
    with_stack: bool = Field(False, description="Record Python stacks (large traces).")
    memory_snapshot: bool = Field(
        False, description="Also dump a CUDA allocator snapshot per window (open at pytorch.org/memory_viz)."
    )

    @property
    def window(self) -> int:
        return self.wait + self.warmup + self.active
