"""`trainer [GROUP=OPTION ...] [KEY=VALUE ...]`: compose -> validate -> train, the one flow.

A Hydra app: sweeps (-m), --help, shell completion (-sc install=bash), configs of one's own
(--config-dir DIR) are Hydra's. Overrides are checked against the schema before Hydra composes. The
task function returns the final validation loss, so sweepers can optimise it. User mistakes (bad
config, missing file, unreachable hub) exit 2 with a short message.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from trainer.boundary import (
    CONF_DIR,
    USER_ERRORS,
    checked_args,
    from_hydra,
    parse,
    register_resolvers,
    report_and_exit,
)
from trainer.boundary.failure import disk_error, is_fresh, log_failure, remove_if_untrained
from trainer.boundary.report import message
from trainer.boundary.search import check_search
from trainer.boundary.sweep import PARENT_ENV, SWEPT_ENV, Sweep, check_sweep, job_facts, swept_values
from trainer.config import TrainConfig
from trainer.config.redact import redact_logs
from trainer.disk import require_run_folder
from trainer.errors import UserError, first_line
from trainer.hub import preflight
from trainer.models import sources as model_sources
from trainer.sweeps.results import failed_jobs, table, write_result
from trainer.tracking.reachable import check_server

HELP = "trainer [GROUP=OPTION ...] [KEY=VALUE ...] [-m]: train a model (trainer --help lists groups and keys)"


def check_sources(cfg: TrainConfig) -> None:
    """Every source of the run is checked now, before torch loads: a hub id is probed (offline, one fails
    in about 1 s), a local model or tokenizer folder is listed for the files it must hold; so is the
    tracking server, when the run logs to one."""
    if cfg.tracker.kind == "mlflow":
        check_server(cfg.tracker.uri)
    model_sources.check_sources(cfg.model)
    preflight(cfg.data.paths())


_ARGS: list[str] = []  # this command line, as the user typed it: what a Slurm job runs again


def _submits(cfg: TrainConfig) -> bool:
    """`launcher=slurm` outside a Slurm job, one run: submit it (a sweep's jobs are Hydra's launcher's)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from trainer.config.hardware import in_slurm_step

    single = HydraConfig.get().mode != RunMode.MULTIRUN
    return cfg.launcher.kind == "slurm" and not in_slurm_step() and single


def _run_folder() -> Path:
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def _task(composed: DictConfig) -> float | None:
    """One run. Whatever ends it early is written at the end of its train.log; a run folder that
    holds nothing but startup files afterwards is removed (trainer/boundary/failure.py)."""
    fresh = is_fresh(_run_folder())
    try:
        inv = from_hydra(composed)
        cfg = inv.cfg
        if _submits(cfg):
            from trainer.commands.submit import submit_run

            submit_run(cfg, _ARGS, inv.run_dir)
            return None
        check_sources(cfg)
        from trainer.commands.process import setup
        from trainer.training.train import train  # heavy imports only once the config is good

        setup(cfg.on_gpu)
        result = train(cfg)
        if cfg.run.sweep is not None:
            write_result(inv.run_dir, cfg.run.sweep.label, "finished", result.metrics, _swept_values())
        return result.val_loss
    except USER_ERRORS as err:
        from trainer.training.run_lock import RunFolderBusy  # standard library only

        if not isinstance(err, RunFolderBusy):  # that folder is the other process's
            log_failure(message(err))
            if _in_sweep():  # the job's folder keeps its error (result.json) for the sweep's table
                return _job_failed(message(err))
            if fresh:
                remove_if_untrained(_run_folder())
        report_and_exit(err)
    except Exception as err:
        trouble = disk_error(err) if isinstance(err, OSError) else None
        if trouble is not None and not _in_sweep():
            report_and_exit(trouble)  # the log may be on the same full disk: not written to
        log_failure("".join(traceback.format_exception(err)))
        if _in_sweep():
            where = _run_folder() / "train.log"
            return _job_failed(f"{type(err).__name__}: {first_line(err)} (traceback in {where})")
        raise


_FAILED: list[str] = []  # this process's sweep jobs that failed (Hydra's basic launcher runs them here)


def _in_sweep() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.get().mode == RunMode.MULTIRUN


def _swept_values() -> dict[str, str]:
    from hydra.core.hydra_config import HydraConfig

    return swept_values(list(HydraConfig.get().overrides.task))


def _job_failed(text: str) -> None:
    """A sweep job that failed is recorded and the sweep goes on (one bad point must not cost the rest)."""
    from hydra.core.hydra_config import HydraConfig

    job = HydraConfig.get().job
    what = f"job {job.num} ({', '.join(job.override_dirname.split(',')) or 'no overrides'})"
    label = job_facts(list(HydraConfig.get().overrides.task)).get("label")
    write_result(_run_folder(), label, "failed", None, _swept_values(), text.splitlines()[0])
    print(f"trainer: {what} failed:\n{text}", file=sys.stderr)
    _FAILED.append(f"{what}: {text.splitlines()[0]}")
    return None


register_resolvers()  # also when a Slurm job (submitit) calls `_task` without `main`
_app = hydra.main(config_path=str(CONF_DIR), config_name="train", version_base="1.3")(_task)


def main(args: list[str]) -> None:
    """Check the overrides (and every job of a sweep), then hand Hydra the command line (rewritten so
    that valid keys compose). A sweep whose jobs failed at run time ends with their list, exit 1."""
    line = parse(args)
    sweep = None
    try:
        hydra_args, _ = checked_args(line)
        if line.multirun and line.valid and not (line.informational or line.completion):
            sweep = check_search(hydra_args, line) or check_sweep(hydra_args, line)
            if sweep is not None:  # made and probed before its tracker run goes under it
                require_run_folder(Path(sweep.folder), sweep.first.run.output_root, "sweep folder")
                if sweep.first.tracker.kind == "mlflow":
                    check_server(sweep.first.tracker.uri)
        elif any(a.startswith("hparams_search=") for a in line.overrides):
            raise UserError(
                "hparams_search: a search runs its trials as a sweep", hint="add -m to the command line"
            )
    except USER_ERRORS as err:
        report_and_exit(err)
    register_resolvers()
    redact_logs()  # Hydra's own lines (a sweep lists each job's overrides) show no password
    _ARGS[:] = args
    parent = _open_sweep(sweep, hydra_args) if sweep is not None else None
    sys.argv = [sys.argv[0], *hydra_args]
    ended, failed = False, list(_FAILED)
    try:
        _app()
        ended = True
    finally:  # the sweep's run is closed even when the sweep itself stopped (exit, Ctrl-C)
        # Jobs run here are in _FAILED with their error; jobs run elsewhere left it in result.json.
        failed = list(_FAILED) or (failed_jobs(Path(sweep.folder)) if sweep is not None else [])
        if parent is not None:
            parent[0].close_sweep(parent[1], failed=len(failed) if ended else max(1, len(failed)))
    if sweep is not None:
        _print_table(Path(sweep.folder))
    if failed:
        print(f"trainer: {len(failed)} job(s) of the sweep failed:", file=sys.stderr)
        print("\n".join(f"  {line}" for line in failed), file=sys.stderr)
        sys.exit(1)


def _print_table(folder: Path) -> None:
    try:
        text = table(folder)
    except USER_ERRORS as err:  # a search.json edited by hand: the sweep ran; say why there is no table
        print(f"trainer: no table of the sweep: {first_line(err)}", file=sys.stderr)
        return
    if text:
        print(text)
        print(f"charts and an HTML page of the sweep: trainer report {folder}")


def _open_sweep(sweep: Sweep, hydra_args: list[str]) -> tuple[Any, str] | None:
    """Fix the sweep folder now (unless given) so that the sweep's tracker run is named by it, open that
    run, and tell the jobs (through the environment) its id and which keys are swept."""
    if not any(a.lstrip("+").startswith("hydra.sweep.dir=") for a in hydra_args):
        hydra_args.append(f"hydra.sweep.dir={sweep.folder}")
    os.environ[SWEPT_ENV] = ",".join(sweep.swept)
    if sweep.first.tracker.kind == "none":
        return None
    from trainer.tracking import for_config

    tracker = for_config(sweep.first)
    try:
        run_id = tracker.open_sweep(Path(sweep.folder).name, sweep.jobs)
    except Exception as err:  # noqa: BLE001 - tracking never stops training: the jobs run unparented
        print(f"trainer: warning: no tracker run for the sweep ({first_line(err)})", file=sys.stderr)
        return None
    if run_id is None:
        return None
    os.environ[PARENT_ENV] = run_id
    return tracker, run_id
