"""A sweep (`-m`) is checked whole before its first job runs: every combination of the command line's
sweep values is composed and validated, and all invalid jobs are listed at once.

Why: Hydra validates a job when it starts it, so an invalid combination (say `optimizer.lr=-1` as job
0) ended the whole sweep with exit 2 and the other jobs never ran; one at job 40 ended it hours in.
The combinations are Hydra's own (`BasicSweeper.split_arguments`, the expansion its basic sweeper and
the submitit launcher use). Values a sweeper takes from its config (`hydra.sweeper.params`) are not
expanded here: their jobs are still validated as each one starts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from trainer.boundary.conf import CommandLine, parse, register_resolvers
from trainer.config import ConfigError
from trainer.errors import UserError

# What `main` knows about the sweep and its jobs need: in the environment, which the jobs inherit
# whether Hydra runs them in this process or submitit on Slurm.
SWEPT_ENV, PARENT_ENV = "TRAINER_SWEPT_KEYS", "TRAINER_SWEEP_PARENT"

SHOWN = 10  # invalid jobs spelled out; the rest are counted


def jobs(overrides: list[str]) -> list[list[str]]:
    """The override list of every job of the sweep, in Hydra's order."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    return [list(job) for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def _swept(line: CommandLine, job: list[str]) -> str:
    """The values that make this job differ from the others (what the user swept)."""
    fixed = set(line.overrides)
    return ", ".join(o for o in job if o not in fixed) or "no swept values"


@dataclass(frozen=True)
class Sweep:
    jobs: int
    swept: list[str]  # the keys whose values differ between jobs
    folder: str  # the sweep folder (hydra.sweep.dir), fixed now so the sweep's run can be named by it
    first: Any  # the first job's TrainConfig: where the sweep's tracker run goes


def swept_keys(every: list[list[str]]) -> list[str]:
    keys: dict[str, set[str]] = {}
    for job in every:
        for override in job:
            key, _, value = override.partition("=")
            keys.setdefault(key, set()).add(value)
    return [k for k, values in keys.items() if len(values) > 1]


def swept_values(task_overrides: list[str]) -> dict[str, str]:
    """This job's value of each swept key (as overridden: `{"optimizer.lr": "0.001"}`)."""
    swept = [k for k in os.environ.get(SWEPT_ENV, "").split(",") if k]
    pairs = [o.partition("=") for o in task_overrides]
    return {k.lstrip("+"): v for k, _, v in pairs if k.lstrip("+") in swept}


def _short(value: str) -> str:
    """A search's sampled floats (0.0012345678901234) read as 0.001235 in labels; values as typed stay."""
    try:
        number = float(value)
    except ValueError:
        return value
    return f"{number:.4g}" if len(value) > 8 and "." in value else value


def job_facts(task_overrides: list[str]) -> dict[str, str]:
    """Inside a job: its label (the swept values, last key segment: `lr=0.001,seed=2`) and the
    sweep's tracker run, from what `main` put in the environment."""
    values = swept_values(task_overrides)
    label = ",".join(f"{k.rsplit('.', 1)[-1]}={_short(v)}" for k, v in values.items())
    facts = {"label": label} if label else {}
    if os.environ.get(PARENT_ENV):
        facts["parent"] = os.environ[PARENT_ENV]
    return facts


def check_sweep(hydra_args: list[str], line: CommandLine) -> Sweep | None:
    """Validate every job of the sweep; raise one UserError listing the invalid ones. None when the
    command line sweeps in a way the basic expansion does not know (a search sweeper's ranges): those
    jobs are validated as they start."""
    from hydra import initialize_config_dir
    from hydra.errors import HydraException

    from trainer.boundary.compose import compose_one
    from trainer.boundary.conf import CONF_DIR

    composed = parse(hydra_args)
    try:
        every = jobs(composed.overrides)
    except HydraException:
        return None
    register_resolvers()
    invalid: list[str] = []
    first: Any = None
    folder = ""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for index, job in enumerate(every):
            try:
                validated, cfg, _ = compose_one(line.config_name, [*job, *line.searchpath])
                if first is None:
                    first, folder = validated, os.path.abspath(str(cfg.hydra.sweep.dir))
            except ConfigError as err:
                lines = [f"  {p.render()}" for p in err.problems]
                invalid.append(f"  job {index} ({_swept(composed, job)}):\n" + "\n".join(lines))
            except UserError as err:
                invalid.append(f"  job {index} ({_swept(composed, job)}):\n    {err.message}")
    if invalid:
        more = [f"  ... and {len(invalid) - SHOWN} more invalid jobs"] if len(invalid) > SHOWN else []
        raise UserError(
            f"{len(invalid)} of {len(every)} jobs of this sweep are invalid; none was started:\n"
            + "\n".join([*invalid[:SHOWN], *more]),
            hint="fix or drop the values named above, then run the sweep again",
        )
    return Sweep(len(every), swept_keys(every), folder, first)
