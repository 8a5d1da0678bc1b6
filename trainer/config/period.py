"""The period type shared by every periodic action (validation, checkpoints, logging, GC, profiling).

A period is an int N (every N optimizer steps), `last_step` (once, after the final step), or `disable`.
`fires` is the one place that decides whether an action runs after a given step; `every_n` turns a
period into the step interval that Lightning's own hooks (val_check_interval, ModelCheckpoint) take,
so those agree with `fires` by construction.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator

LAST_STEP = "last_step"
DISABLE = "disable"
_WORDS = (LAST_STEP, DISABLE)


def _parse(value: Any) -> int | str:
    if isinstance(value, bool):
        raise ValueError("expected a period: a positive int (every N steps), last_step or disable")
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str) and value.strip().lower() in _WORDS:
        return value.strip().lower()
    if value is None:
        raise ValueError("null is not a period; use disable (never), last_step, or a positive int N")
    raise ValueError("expected a period: a positive int (every N steps), last_step or disable")


Period = Annotated[int | Literal["last_step", "disable"], BeforeValidator(_parse)]
"""Every N optimizer steps, once at `last_step`, or `disable`."""


def enabled(period: int | str) -> bool:
    return period != DISABLE


def fires(period: int | str, step: int, last_step: int) -> bool:
    """Whether the action runs after optimizer step `step` (1-based) of a run of `last_step` steps."""
    if period == DISABLE or step < 1:
        return False
    if period == LAST_STEP:
        return step == last_step
    return step % int(period) == 0


def every_n(period: int | str, last_step: int) -> int | None:
    """The step interval equal to `period` for hooks that only take one; None when disabled."""
    if period == DISABLE:
        return None
    return last_step if period == LAST_STEP else int(period)


def never_fires(period: int | str, last_step: int | None) -> bool:
    """An int period longer than a run of known length: the action would silently never run."""
    return isinstance(period, int) and last_step is not None and period > last_step
