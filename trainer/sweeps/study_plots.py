"""Optuna's own charts of a searched sweep: optimization history, intermediate values (what pruning
saw) and parameter importances, each drawn only when the study has what it needs, else a note says why.

The study is read from the `optuna.db` inside the sweep folder rather than from the absolute path that
search.json recorded: a sweep folder copied off a cluster, or moved, still reports. optuna is imported
here only, after the command line has been checked.
"""

from __future__ import annotations

import json
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainer.errors import first_line
from trainer.sweeps.results import SEARCH, Objective

if TYPE_CHECKING:
    from optuna import Study

STUDY_DB = "optuna.db"
# Importances from fewer completed trials than this rank parameters by noise (PED-ANOVA, Optuna's
# default evaluator, compares the best 10 % of trials with all of them).
MIN_TRIALS_FOR_IMPORTANCE = 5


@dataclass
class StudyPlots:
    """What was drawn from the study (PNG paths), what was skipped and why, its storage URL, and each
    job's trial number (Optuna's charts name trials, the table names jobs)."""

    written: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    storage: str | None = None
    trials: dict[str, int] = field(default_factory=dict)


def storage(sweep_dir: Path) -> str | None:
    """`sqlite:///<sweep>/optuna.db` when the sweep was an Optuna search (search.json + optuna.db)."""
    db = sweep_dir / STUDY_DB
    if (sweep_dir / SEARCH).is_file() and db.is_file():
        return f"sqlite:///{db.resolve()}"
    return None


def dashboard_hint(url: str) -> str:
    """The command that opens the study in a browser, or how to get it."""
    command = f"optuna-dashboard {url}"
    if shutil.which("optuna-dashboard"):
        return f"open the study in a browser: {command}"
    return f"`pip install optuna-dashboard`, then `{command}`, opens the study in a browser"


def _load(sweep_dir: Path, url: str) -> Study:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    name = json.loads((sweep_dir / SEARCH).read_text()).get("study") or None  # None: the only study
    return optuna.load_study(study_name=name, storage=url)


def _save(draw: Any, path: Path) -> None:
    """Draw one of Optuna's matplotlib charts and save it. rc_context undoes the style Optuna sets
    globally (ggplot), so charts drawn after it look as they would without it."""
    import matplotlib

    matplotlib.use("Agg")  # Optuna draws through pyplot: never a window, also where a display exists
    import matplotlib.pyplot as plt
    from optuna.exceptions import ExperimentalWarning

    with matplotlib.rc_context(), warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        ax = draw()
        try:
            ax.figure.savefig(path, bbox_inches="tight")
        finally:
            plt.close(ax.figure)


def plot_study(sweep_dir: Path, goal: Objective, out_dir: Path) -> StudyPlots:
    """Optuna's charts of the sweep's study into `out_dir`; nothing (and no note) for a plain sweep."""
    url = storage(sweep_dir)
    result = StudyPlots(storage=url)
    if url is None:
        if (sweep_dir / SEARCH).is_file():
            result.notes.append(f"no {STUDY_DB} in the sweep folder: Optuna's charts are not drawn")
        return result
    try:
        study = _load(sweep_dir, url)
    except Exception as err:  # a missing study or an unreadable database: report the rest anyway
        result.notes.append(f"the Optuna study in {STUDY_DB} could not be read: {first_line(err)}")
        result.storage = None
        return result
    from optuna.trial import TrialState
    from optuna.visualization import matplotlib as charts

    every = study.get_trials(deepcopy=False)
    result.trials = {str(t.user_attrs["job"]): t.number for t in every if "job" in t.user_attrs}
    complete = [trial for trial in every if trial.state == TrialState.COMPLETE]
    params = {name for trial in complete for name in trial.params}
    pruning = any(trial.intermediate_values for trial in every)
    plans = [
        ("optimization_history", bool(complete), "no completed trial yet",
         lambda: charts.plot_optimization_history(study, target_name=goal.metric)),
        ("intermediate_values", pruning, "no trial reported intermediate values (no pruning)",
         lambda: charts.plot_intermediate_values(study)),
        ("param_importances", len(params) >= 2 and len(complete) >= MIN_TRIALS_FOR_IMPORTANCE,
         f"needs >= 2 searched params and >= {MIN_TRIALS_FOR_IMPORTANCE} completed trials "
         f"(this study: {len(params)} params, {len(complete)} completed)",
         lambda: charts.plot_param_importances(study, target_name=goal.metric)),
    ]  # fmt: skip
    for name, possible, why_not, draw in plans:
        path = out_dir / f"{name}.png"
        if not possible:
            result.notes.append(f"{path.name} not drawn: {why_not}")
            continue
        try:
            _save(draw, path)
            result.written.append(path)
        except Exception as err:  # one chart Optuna cannot draw does not cost the others
            result.notes.append(f"{path.name} not drawn: Optuna: {first_line(err)}")
    return result
