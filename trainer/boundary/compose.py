"""Composing a command line into an `Invocation`: for the training app (inside `@hydra.main`) and for
the commands that do not train (`plan`, `preprocess`, `generate`, `evaluate`, `merge`).

Those commands compose with Hydra's compose API: the same conf/, search path, overrides and
validation as training, but one run (no sweep), no run folder, no .hydra/ and no log file. The paths a
run would use are computed the way Hydra computes them (`hydra.run.dir`, made absolute).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from trainer.boundary.conf import CONF_DIR, CommandLine, parse, register_resolvers
from trainer.boundary.hooks import refuse_hooks
from trainer.boundary.invocation import Invocation
from trainer.boundary.overrides import check
from trainer.boundary.redacted import redact_hydra_records
from trainer.boundary.sweep import job_facts
from trainer.boundary.validate import from_composed
from trainer.config import ConfigError
from trainer.errors import UserError


def checked_args(line: CommandLine) -> tuple[list[str], list[str]]:
    """The arguments to give Hydra, and the groups/keys they set; raises ConfigError for typos and
    UserError for Hydra hooks (before Hydra composes or instantiates anything)."""
    refuse_hooks(line)
    checked = check(line)
    if checked.problems:
        raise ConfigError(checked.problems)
    return checked.args, checked.set_keys


def _choices(found: Any) -> dict[str, str]:
    """Hydra's runtime choices without its own groups (hydra/launcher, ...)."""
    return {
        str(k): str(v) for k, v in (found or {}).items() if v is not None and not str(k).startswith("hydra")
    }


def compose(args: list[str], command: str) -> Invocation:
    """Compose and validate `args` for `command` (a one-run command that writes no run folder)."""
    line = parse(args)
    if line.multirun:
        raise UserError(f"{command} takes one run, not a sweep (-m)", hint="run it once per sweep point")
    if not line.valid or line.completion or line.informational:
        raise UserError(
            f"{command}: unsupported arguments {' '.join(args)}",
            hint=f"pass overrides (KEY=VALUE, GROUP=OPTION) and --config-dir DIR; see {command} --help",
        )
    hydra_args, set_keys = checked_args(line)
    overrides = [*parse(hydra_args).overrides, *line.searchpath]
    register_resolvers()
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        validated, cfg, run_dir = compose_one(line.config_name, overrides)
    return Invocation(validated, _choices(cfg.hydra.runtime.choices), tuple(set_keys), run_dir)


def compose_one(config_name: str, overrides: list[str]) -> tuple[Any, DictConfig, Path]:
    """Inside `initialize_config_dir`: compose one run's overrides and validate them, with `run.dir`
    resolved against the run folder Hydra would make. Returns (TrainConfig, composed config, folder)."""
    from hydra import compose as hydra_compose
    from hydra.core.hydra_config import HydraConfig

    cfg = hydra_compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    run_dir = Path(os.path.abspath(str(OmegaConf.select(cfg, "hydra.run.dir"))))
    with read_write(cfg.hydra.runtime), open_dict(cfg.hydra.runtime):
        cfg.hydra.runtime.output_dir = str(run_dir)
    HydraConfig.instance().set_config(cfg)
    validated = from_composed(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]))
    return validated, cfg, run_dir


def _job_number(hc: Any) -> int:
    """The job folder's number (a search names folders itself: a trial it asks again after an
    interruption reruns in its old folder), else Hydra's job index."""
    name = Path(hc.runtime.output_dir).name
    return int(name) if name.isdigit() else int(hc.job.num)


def from_hydra(cfg: DictConfig) -> Invocation:
    """Inside the training app: Hydra has composed, made the run folder and set up logging."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    launcher: dict[str, Any] = {}
    multirun = hc.mode == RunMode.MULTIRUN
    if multirun:  # tags the job's tracker run with its sweep and index (and main's facts: sweep.py)
        launcher["run.sweep"] = {
            "id": Path(hc.sweep.dir).name,
            "job": _job_number(hc),
            **job_facts(list(hc.overrides.task)),
        }
    redact_hydra_records(Path(hc.runtime.output_dir), Path(hc.sweep.dir) if multirun else None)
    validated = from_composed(cfg, launcher)
    set_keys = [o.partition("=")[0].lstrip("+~") for o in hc.overrides.task]
    set_keys = [k for k in set_keys if not k.startswith("hydra")]
    return Invocation(validated, _choices(hc.runtime.choices), tuple(set_keys), Path(hc.runtime.output_dir))
