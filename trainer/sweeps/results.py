"""What each job of a sweep ended with, and the table of all of them printed when the sweep ends.

Each job writes `<job folder>/result.json`: its label (the swept values, `lr=0.001`), `params` (each
swept key's value, as overridden), status (finished, failed, pruned), `val_loss` and every final metric
(`metrics`), and the error of a failed job. The table is read back from the sweep folder, so it is the
same whether Hydra ran the jobs in this process or submitit ran them on Slurm nodes. The objective is the
final validation loss unless an Optuna search names another metric; the best job is marked.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from trainer.errors import UserError

RESULT = "result.json"
SEARCH = "search.json"  # written by an Optuna search: the metric it optimises and in which direction
DIRECTIONS = ("minimize", "maximize")


def write_result(
    run_dir: Path,
    label: str | None,
    status: str,
    metrics: dict[str, float] | None = None,
    params: dict[str, str] | None = None,
    error: str = "",
) -> None:
    if not run_dir.is_dir():  # a job that failed before training left no folder
        return
    finite = {k: v for k, v in (metrics or {}).items() if math.isfinite(v)}
    record = {
        "label": label or "",
        "params": params or {},
        "status": status,
        "val_loss": finite.get("val/loss"),
        "metrics": finite,
        "error": error,
    }
    (run_dir / RESULT).write_text(json.dumps(record))


@dataclass(frozen=True)
class Objective:
    """What the sweep optimises: the final validation loss, or the metric an Optuna search named."""

    metric: str = "val/loss"
    direction: str = "minimize"
    searched: bool = False  # named by search.json (else the default)

    @property
    def header(self) -> str:
        """`val loss, lower is better` (the default, as it always read) or `<metric>, higher is better`."""
        name = self.metric if self.searched else "val loss"
        return f"{name}, {'lower' if self.direction == 'minimize' else 'higher'} is better"

    def value(self, record: dict) -> float | None:
        """The job's final value of the metric, or None (not logged, not finite)."""
        metrics = record.get("metrics") or {}
        value = metrics.get(self.metric, record.get("val_loss") if self.metric == "val/loss" else None)
        return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def objective(sweep_dir: Path) -> Objective:
    """The objective from `<sweep>/search.json` when an Optuna search wrote one, else val/loss minimised."""
    path = sweep_dir / SEARCH
    if not path.is_file():
        return Objective()
    try:
        search = json.loads(path.read_text())
        metric, direction = search["metric"], search["direction"]
    except (ValueError, KeyError, TypeError) as err:
        raise UserError(f"{path}: not a search description ({type(err).__name__}: {err})") from None
    if direction not in DIRECTIONS or not isinstance(metric, str) or not metric:
        expected = f"a metric name and a direction in {DIRECTIONS}"
        raise UserError(f"{path}: metric {metric!r}, direction {direction!r}: expected {expected}")
    return Objective(metric, direction, searched=True)


@dataclass(frozen=True)
class Row:
    """One job of the table: the text table and the report's HTML table are both made of these."""

    job: str
    label: str
    status: str
    value: float | None
    best: bool
    folder: Path
    record: dict

    @property
    def shown(self) -> str:
        return "n/a" if self.value is None else f"{self.value:.4f}"


def jobs(sweep_dir: Path) -> list[tuple[str, dict]]:
    """(job number, its result.json) for each numbered folder, in job order; `no result` where the job
    wrote none (still running, or killed before it ended) or one that cannot be read."""
    rows = []
    for folder in sorted((p for p in sweep_dir.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)):
        try:
            record = json.loads((folder / RESULT).read_text())
        except (OSError, ValueError):
            record = {"status": "no result"}
        rows.append((folder.name, record if isinstance(record, dict) else {"status": "no result"}))
    return rows


def is_sweep(folder: Path) -> bool:
    """A sweep folder holds numbered job folders, at least one with a result.json."""
    return folder.is_dir() and any(p.name.isdigit() and (p / RESULT).is_file() for p in folder.iterdir())


def rows(sweep_dir: Path, goal: Objective) -> list[Row]:
    """Every job with its objective value; the best finished job is marked. Only finished jobs compete:
    a pruned or failed job's value is from the step it stopped at, not a final one."""
    found = jobs(sweep_dir) if sweep_dir.is_dir() else []
    values = {job: goal.value(record) for job, record in found}
    finished = [v for (job, r) in found if r.get("status") == "finished" and (v := values[job]) is not None]
    best = (min if goal.direction == "minimize" else max)(finished) if finished else None
    return [
        Row(
            job,
            record.get("label", ""),
            record.get("status", "?"),
            values[job],
            best is not None and values[job] == best and record.get("status") == "finished",
            sweep_dir / job,
            record,
        )
        for job, record in found
    ]


def table(sweep_dir: Path) -> str:
    """Job, swept values, status, objective, folder; `*` marks the best job. The objective is val loss
    (lower is better) unless the sweep's search.json names another metric and direction."""
    goal = objective(sweep_dir) if sweep_dir.is_dir() else Objective()
    found = rows(sweep_dir, goal)
    if not found:
        return ""
    width = max(len(r.label) for r in found) or 1
    lines = [f"sweep {sweep_dir.name}: {len(found)} jobs ({goal.header}; * best)"]
    for r in found:
        mark = "*" if r.best else " "
        lines.append(f" {mark} {r.job:>3}  {r.label:<{width}}  {r.status:<9}  {r.shown:>8}  {r.folder}")
    return "\n".join(lines)


def read_result(run_dir: Path) -> dict | None:
    """A job's result.json, or None when the job wrote none (it died, or has not ended)."""
    try:
        record = json.loads((run_dir / RESULT).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and "status" in record else None


def set_status(run_dir: Path, status: str) -> None:
    """Rewrite a job's status (a search marks a trial it pruned)."""
    record = read_result(run_dir)
    if record is not None:
        (run_dir / RESULT).write_text(json.dumps({**record, "status": status}))


def failed_jobs(sweep_dir: Path) -> list[str]:
    """`job N: error` for each job whose result.json says it failed: how the sweeping process learns of
    jobs that ran elsewhere (Slurm nodes, local processes)."""
    if not sweep_dir.is_dir():
        return []
    jobs = sorted((p for p in sweep_dir.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    records = [(job, read_result(job)) for job in jobs]
    return [
        f"job {job.name}: {r.get('error') or 'failed'}" for job, r in records if r and r["status"] == "failed"
    ]
