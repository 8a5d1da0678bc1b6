"""The Optuna search loop: ask the study for trials, launch them as sweep jobs, tell it their results.

Optuna's ask/tell API on Optuna 5 (the Hydra Optuna sweeper plugin pins optuna < 3, which cannot keep a
study in sqlite next to SQLAlchemy 2). The study lives in the sweep folder (`optuna.db`), so a search
whose sweeping process died continues when the same command runs again with
`hydra.sweep.dir=<that folder>`: finished trials are kept, trials that were running are settled from
their job folder's result.json when the job finished, else failed and asked again with the same values,
in the same job folder, where the run resumes from its last checkpoint (run.resume=auto).
Trials are launched through Hydra's launcher, `parallel` at a time: one after another on this machine,
or as a Slurm array with `launcher=slurm`. A trial's job reports its validation values to the study as
it trains (trainer/training/pruning.py), which is how bad trials are stopped early.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from trainer.boundary.search import Dimension, settings, space, split_args, value_text
from trainer.config.hparams_search import JOB_ATTR, PRUNED_ATTR, SEARCH_ENV, SearchConfig
from trainer.errors import UserError
from trainer.sweeps.results import read_result, set_status

SEARCH_FILE, STUDY_FILE = "search.json", "optuna.db"
INTERRUPTED_ATTR = "interrupted"


def run_search(config: DictConfig, launcher: Any, arguments: list[str]) -> list[Any]:
    """Run trials until the study holds `trials` settled ones (complete, pruned or failed at run time)."""

    search = settings(config)
    fixed, swept = split_args(arguments)
    dims = space(search, swept)
    sweep_dir = Path(str(config.hydra.sweep.dir)).absolute()
    sweep_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(config, sweep_dir / "multirun.yaml")
    study = _open_study(search, sweep_dir)
    facts = {
        "storage": _storage(search, sweep_dir),
        "study": study.study_name,
        "metric": search.metric,
        "pruner": search.pruner.model_dump(),  # a study loaded in the job gets Optuna's default pruner
    }
    (sweep_dir / SEARCH_FILE).write_text(json.dumps({**facts, "direction": search.direction}, indent=1))
    os.environ[SEARCH_ENV] = json.dumps(facts)  # the jobs' pruning callback finds the study by it
    _settle_interrupted(study, sweep_dir, search.metric)
    distributions = {d.key: _distribution(d) for d in dims}
    job, launched, returns = _next_job(study, sweep_dir), 0, []
    while (left := search.trials - _settled(study)) > 0:
        trials = [study.ask(distributions) for _ in range(min(search.parallel, left))]
        folders = []
        for trial in trials:  # a trial asked again after an interruption continues in its folder
            folder = trial.user_attrs.get(JOB_ATTR)
            if folder is None:
                folder, job = str(job), job + 1
                trial.set_user_attr(JOB_ATTR, folder)
            folders.append(folder)
        batch = [
            [*fixed, *(f"{k}={value_text(t.params[k])}" for k in distributions), f"hydra.sweep.subdir={f}"]
            for t, f in zip(trials, folders, strict=True)
        ]
        returns.append(launcher.launch(batch, initial_job_idx=launched))
        launched += len(batch)
        for trial, folder in zip(trials, folders, strict=True):
            _tell(study, trial.number, sweep_dir / folder, search.metric)
    _print_best(study, search)
    return returns


def _storage(search: SearchConfig, sweep_dir: Path) -> str:
    return search.storage or f"sqlite:///{sweep_dir / STUDY_FILE}"


def _sampler(search: SearchConfig, done: int) -> Any:
    """Seeded samplers get seed + trials already in the study, so a continued search does not propose
    the first trials again."""
    import optuna

    seed = None if search.sampler.seed is None else search.sampler.seed + done
    if search.sampler.kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=search.sampler.startup_trials)


def _open_study(search: SearchConfig, sweep_dir: Path) -> Any:
    import optuna

    from trainer.training.pruning import make_pruner

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # its per-trial INFO lines repeat our table
    study = optuna.create_study(
        storage=_storage(search, sweep_dir),
        study_name=search.study or sweep_dir.name,
        direction=search.direction,
        sampler=_sampler(search, 0),
        pruner=make_pruner(search.pruner),
        load_if_exists=True,
    )
    if study.direction.name.lower() != search.direction:
        raise UserError(
            f"the study {study.study_name} in {sweep_dir} is a {study.direction.name.lower()} search; "
            f"hydra.sweeper.direction={search.direction} does not match",
            hint="continue it with the direction it was started with, or start a new sweep folder",
        )
    if study.trials:
        study.sampler = _sampler(search, len(study.trials))
        print(f"trainer: continuing the search in {sweep_dir} ({_settled(study)} trials settled)")
    return study


def _distribution(dim: Dimension) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if dim.kind == "choice":
        return CategoricalDistribution(list(dim.choices))
    if dim.kind == "int":
        step = int(dim.step or 1)
        return IntDistribution(int(dim.low), int(dim.high), log=dim.log, step=1 if dim.log else step)
    return FloatDistribution(float(dim.low), float(dim.high), log=dim.log, step=None if dim.log else dim.step)


def _settled(study: Any) -> int:
    from optuna.trial import TrialState

    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return sum(
        1 for t in study.get_trials(deepcopy=False, states=done) if INTERRUPTED_ATTR not in t.user_attrs
    )


def _next_job(study: Any, sweep_dir: Path) -> int:
    """After every job folder and every job a trial names: a continued search never reuses a folder."""
    numbers = [int(p.name) for p in sweep_dir.iterdir() if p.name.isdigit()]
    numbers += [int(t.user_attrs[JOB_ATTR]) for t in study.trials if JOB_ATTR in t.user_attrs]
    return max(numbers, default=-1) + 1


def _settle_interrupted(study: Any, sweep_dir: Path, metric: str) -> None:
    """Trials left running by a sweeping process that died: settled by their job's result when the job
    got to the end; otherwise failed (marked interrupted, not counted) and asked again, same values."""
    import optuna
    from optuna.trial import TrialState

    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        job = frozen.user_attrs.get(JOB_ATTR)
        record = read_result(sweep_dir / job) if job is not None else None
        if record is not None and record["status"] in ("finished", "failed"):
            _tell(study, frozen.number, sweep_dir / job, metric)
            continue
        optuna.trial.Trial(study, frozen._trial_id).set_user_attr(INTERRUPTED_ATTR, True)
        study.tell(frozen.number, state=TrialState.FAIL)
        study.enqueue_trial(frozen.params, user_attrs={"retry_of": frozen.number, JOB_ATTR: job})
        print(f"trainer: trial {frozen.number} (job {job}) was interrupted; it continues in its folder")


def _tell(study: Any, number: int, job_dir: Path, metric: str) -> None:
    """The job's result.json decides: pruned (its pruning callback marked the trial), complete with the
    objective, or failed (no result, a failed job, or no objective value)."""
    from optuna.trial import TrialState

    frozen = study.get_trials(deepcopy=False)[number]
    record = read_result(job_dir)
    value = (record or {}).get("metrics", {}).get(metric)
    if PRUNED_ATTR in frozen.user_attrs and record is not None and record["status"] == "finished":
        study.tell(number, state=TrialState.PRUNED)
        set_status(job_dir, "pruned")
    elif record is not None and record["status"] == "finished" and value is not None:
        study.tell(number, value)
    else:
        study.tell(number, state=TrialState.FAIL)


def _print_best(study: Any, search: SearchConfig) -> None:
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        print("trainer: no trial of the search completed", file=sys.stderr)
        return
    best = study.best_trial
    values = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.params.items())
    print(
        f"trainer: best trial {best.number} (job {best.user_attrs.get(JOB_ATTR)}): {search.metric}="
        f"{best.value:.4f} with {values}"
    )
