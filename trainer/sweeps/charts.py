"""The report's own charts: every job's loss curves on one chart, and the objective against each swept
value.

Drawn on `matplotlib.figure.Figure` objects, not through pyplot: no global figure state to close or leak,
and no display needed, whatever backend the caller's process has chosen. matplotlib is imported inside
the functions, so that importing this module (and `trainer report --help`) stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from trainer.sweeps.results import Objective

if TYPE_CHECKING:
    from matplotlib.figure import Figure

History = dict[str, list[tuple[int, float]]]  # metric name -> (step, value), sorted by step


@dataclass(frozen=True)
class Point:
    """One job on an objective-vs-parameter chart."""

    value: str  # the parameter's value as overridden (`0.001`, `cosine`)
    objective: float
    status: str
    best: bool


def _figure() -> Figure:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5), dpi=100, layout="constrained")
    fig.add_subplot()
    return fig


def _colours(n: int) -> list:
    """Ten distinct colours while they last, then evenly spaced ones: a big search stays readable."""
    from matplotlib import colormaps

    if n <= 10:
        return [colormaps["tab10"](i) for i in range(n)]
    return [colormaps["viridis"](i / max(1, n - 1)) for i in range(n)]


def loss_curves(curves: Sequence[tuple[str, History]], title: str, path: Path) -> None:
    """train/loss of every job against the optimizer step, one colour per job labelled by its swept
    values; its val/loss dashed in the same colour (with markers: a run may validate only once)."""
    fig = _figure()
    ax = fig.axes[0]
    any_val = False
    for (label, history), colour in zip(curves, _colours(len(curves)), strict=True):
        train, val = history.get("train/loss", []), history.get("val/loss", [])
        if train:
            ax.plot(*zip(*train, strict=True), color=colour, linewidth=1.2, label=label)
        if val:
            any_val = True
            ax.plot(*zip(*val, strict=True), "--", marker="o", markersize=3, color=colour,
                    label=None if train else label)  # fmt: skip
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title(title + (": train/loss solid, val/loss dashed" if any_val else ": train/loss"))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", ncol=max(1, math.ceil(len(curves) / 15)))
    fig.savefig(path)


def param_axis(values: Sequence[str]) -> str:
    """How to lay out a parameter's values: `log` (all numbers, positive, spanning more than 10x: learning
    rates, weight decays), `linear` (other numbers) or `category` (anything else: names, booleans)."""
    try:
        numbers = [float(v) for v in values]
    except ValueError:
        return "category"
    if not all(math.isfinite(n) for n in numbers):
        return "category"
    if min(numbers) > 0 and max(numbers) / min(numbers) > 10:
        return "log"
    return "linear"


def objective_vs_param(key: str, points: Sequence[Point], goal: Objective, path: Path) -> None:
    """The objective of each job against its value of `key`. Finished jobs are dots, the best a star;
    jobs stopped early (pruned, failed) are crosses: their value is from the step they stopped at."""
    fig = _figure()
    ax = fig.axes[0]
    axis = param_axis([p.value for p in points])
    if axis == "category":
        names = sorted({p.value for p in points})
        ax.set_xticks(range(len(names)), names, rotation=30 if len(names) > 6 else 0)
        x = [names.index(p.value) for p in points]
    else:
        x = [float(p.value) for p in points]
        ax.set_xscale(axis)
    kinds = (
        ("finished", lambda p: p.status == "finished" and not p.best, {"marker": "o", "color": "C0"}),
        ("best", lambda p: p.best, {"marker": "*", "s": 180, "color": "C3"}),
        ("stopped early", lambda p: p.status != "finished", {"marker": "x", "color": "0.5"}),
    )
    for name, chosen, style in kinds:
        picked = [(xi, p.objective) for xi, p in zip(x, points, strict=True) if chosen(p)]
        if picked:
            ax.scatter(*zip(*picked, strict=True), label=name, zorder=3, **style)
    ax.set_xlabel(key + (" (log scale)" if axis == "log" else ""))
    ax.set_ylabel(goal.metric)
    ax.set_title(f"{goal.metric} against {key} ({goal.header})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.savefig(path)
