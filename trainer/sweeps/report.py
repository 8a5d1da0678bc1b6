"""The report of a sweep (`trainer report SWEEP_FOLDER`): the table, charts as PNG files and one HTML
page, all in `<sweep folder>/report/`.

Everything is read back from the sweep folder (each job's result.json and metrics.jsonl, the search's
search.json and optuna.db), never from MLflow: a sweep copied off a cluster, or run with tracker=none,
reports the same. The page embeds its charts (base64), so it can be mailed or opened offline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from trainer.errors import UserError
from trainer.sweeps import charts
from trainer.sweeps.charts import Point
from trainer.sweeps.results import Objective, Row, is_sweep, objective, rows, table
from trainer.training.metrics_history import FILE, read_history

REPORT_DIR = "report"
WHERE_SWEEPS_LIVE = (
    "a sweep (`trainer -m KEY=A,B`) writes one numbered folder per job (0/, 1/, ...), each with the "
    "result.json its job ended with, under outputs/<experiment>/sweeps/<timestamp>/"
)


@dataclass
class Report:
    """What `trainer report` prints: the table, the files written, notes on what was left out, and how
    to open the Optuna study (None for a plain sweep)."""

    table: str
    written: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dashboard: str | None = None


def sweep_folder(arg: str) -> Path:
    """The sweep folder the user named, checked: a user mistake is a UserError that says what to pass."""
    path = Path(arg).expanduser()
    if not path.exists():
        raise UserError(f"{arg}: no such folder", hint=WHERE_SWEEPS_LIVE)
    if not path.is_dir():
        raise UserError(f"{arg}: not a folder; pass a sweep folder", hint=WHERE_SWEEPS_LIVE)
    if is_sweep(path):
        return path
    if (path / "result.json").is_file() and is_sweep(path.parent):  # one job of a sweep
        raise UserError(f"{arg} is one job of a sweep", hint=f"trainer report {path.parent}")
    inside = sorted((p for p in path.iterdir() if is_sweep(p)), key=lambda p: p.name)
    hint = f"the newest sweep in it: trainer report {inside[-1]}" if inside else WHERE_SWEEPS_LIVE
    raise UserError(f"{arg} is not a sweep folder (no numbered job folder with a result.json)", hint=hint)


def _safe(key: str) -> str:
    """A swept key as a file name (`optimizer.lr` stays, `+peft/r` -> `_peft_r`)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", key)


def _loss_curves(found: list[Row], title: str, out: Path, report: Report) -> None:
    curves, missing = [], []
    for row in found:
        history = read_history(row.folder)  # {} without a metrics.jsonl
        if history.get("train/loss") or history.get("val/loss"):
            curves.append((row.label or f"job {row.job}", history))
        else:
            missing.append(f"{row.job} ({row.label})" if row.label else row.job)
    if missing:
        report.notes.append(f"no loss curve (no {FILE} or no loss in it) for job(s) {', '.join(missing)}")
    if curves:
        charts.loss_curves(curves, title, out / "loss_curves.png")
        report.written.append(out / "loss_curves.png")


def _objective_charts(found: list[Row], goal: Objective, out: Path, report: Report) -> None:
    scored = [row for row in found if row.value is not None]
    if not scored:
        report.notes.append(f"no job has a final {goal.metric}: no objective charts")
        return
    keys = list(dict.fromkeys(key for row in found for key in row.record.get("params") or {}))
    for key in keys:
        points = [
            Point(str(row.record["params"][key]), row.value, row.status, row.best)
            for row in scored
            if key in (row.record.get("params") or {})
        ]
        if points:
            path = out / f"objective_vs_{_safe(key)}.png"
            charts.objective_vs_param(key, points, goal, path)
            report.written.append(path)


def write_report(sweep_dir: Path) -> Report:
    """The table, the charts and report.html into `<sweep_dir>/report/` (its old PNGs removed first: a
    chart that no longer applies does not linger). The folder must have passed `sweep_folder`."""
    from trainer.sweeps.page import write_page
    from trainer.sweeps.study_plots import dashboard_hint, plot_study

    goal = objective(sweep_dir)
    found = rows(sweep_dir, goal)
    report = Report(table(sweep_dir))
    out = sweep_dir / REPORT_DIR
    try:
        out.mkdir(exist_ok=True)
        for old in out.glob("*.png"):
            old.unlink()
    except OSError as err:
        raise UserError(f"cannot write the report into {out}: {err.strerror or err}") from None
    _loss_curves(found, f"sweep {sweep_dir.name}", out, report)
    _objective_charts(found, goal, out, report)
    study = plot_study(sweep_dir, goal, out)
    report.written += study.written
    report.notes += study.notes
    report.dashboard = dashboard_hint(study.storage) if study.storage else None
    page = out / "report.html"
    write_page(page, sweep_dir, goal, found, report.written, report.notes, study.trials)
    report.written.append(page)
    return report
