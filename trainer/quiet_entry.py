"""The shared entry of the commands that compose a run's config but do not train it (`trainer.plan`,
`trainer.preprocess`): same composition and validation as `python -m trainer`, one run (no sweep), and
no run folder, .hydra/ or log file created by Hydra.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import hydra
from omegaconf import DictConfig

from trainer.boundary import USER_ERRORS, register_resolvers, report_and_exit, to_train_config
from trainer.config import ConfigError, TrainConfig
from trainer.errors import UserError
from trainer.overrides import check as check_overrides

register_resolvers()

# Absolute, so the same conf/ is found from `python -m trainer`, the `trainer` console script and `-c`.
CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")

# Appended to the command line: no run folder, no .hydra/, no log file.
QUIET_HYDRA = (
    "hydra.output_subdir=null",
    "hydra/job_logging=disabled",
    "hydra/hydra_logging=disabled",
    "hydra.run.dir=.",
)
_QUIET_KEYS = tuple(o.partition("=")[0] + "=" for o in QUIET_HYDRA)
_user_run_dir: str | None = None

Task = Callable[[TrainConfig, dict[str, str]], None]


def user_run_dir() -> str | None:
    """A hydra.run.dir=... the user passed: shown by the plan, never created."""
    return _user_run_dir


def quiet_main(task: Task, command: str, args: list[str]) -> None:
    """Compose `args` (Hydra overrides) and call `task(config, group choices)`; user mistakes exit 2."""
    if "-m" in args or "--multirun" in args:
        report_and_exit(
            UserError(f"{command} takes one run, not a sweep (-m)", hint="run it once per sweep point")
        )
    problems = check_overrides(args, Path(CONF_DIR))
    if problems:
        report_and_exit(ConfigError(problems))
    kept = [a for a in args if not a.startswith(_QUIET_KEYS)]
    global _user_run_dir
    _user_run_dir = next((a.partition("=")[2] for a in args if a.startswith("hydra.run.dir=")), None)

    @hydra.main(config_path=CONF_DIR, config_name="train", version_base="1.3")
    def _compose(cfg: DictConfig) -> None:
        try:
            from hydra.core.hydra_config import HydraConfig

            train_cfg = to_train_config(cfg, {})
            choices = {str(k): str(v) for k, v in HydraConfig.get().runtime.choices.items() if v is not None}
            task(train_cfg, choices)
        except USER_ERRORS as err:
            report_and_exit(err)

    sys.argv = [sys.argv[0], *kept, *QUIET_HYDRA]
    _compose()
