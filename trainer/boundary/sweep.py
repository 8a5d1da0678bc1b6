"""A sweep (`-m`) is checked whole before its first job runs: every combination of the command line's
sweep values is composed and validated, and all invalid jobs are listed at once.

Why: Hydra validates a job when it starts it, so an invalid combination (say `optimizer.lr=-1` as job
0) ended the whole sweep with exit 2 and the other jobs never ran; one at job 40 ended it hours in.
The combinations are Hydra's own (`BasicSweeper.split_arguments`, the expansion its basic sweeper and
the submitit launcher use). Values a sweeper takes from its config (`hydra.sweeper.params`) are not
expanded here: their jobs are still validated as each one starts.
"""

from __future__ import annotations

from trainer.boundary.conf import CommandLine, parse, register_resolvers
from trainer.config import ConfigError
from trainer.errors import UserError

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


def check_sweep(hydra_args: list[str], line: CommandLine) -> int:
    """Validate every job of the sweep; raise one UserError listing the invalid ones. Returns the number
    of jobs checked."""
    from hydra import initialize_config_dir

    from trainer.boundary.compose import compose_one
    from trainer.boundary.conf import CONF_DIR

    composed = parse(hydra_args)
    every = jobs(composed.overrides)
    register_resolvers()
    invalid: list[str] = []
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for index, job in enumerate(every):
            try:
                compose_one(line.config_name, [*job, *line.searchpath])
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
    return len(every)
