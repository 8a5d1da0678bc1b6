"""The boundary: everything before validation, and the one way to a validated config.

    conf.py        where conf/ is, the `${asset:}` resolver, Hydra's flags told apart from overrides
    hooks.py       Hydra hooks (hydra.callbacks, `_target_`) refused on the command line and in config
                   folders of one's own, before Hydra runs them (TRAINER_ALLOW_HOOKS=1 allows them)
    overrides.py   the early check of overrides against the schema (typos, wrong options), and the
                   rewrites that let valid ones compose
    compose.py     command line -> `Invocation` (training inside @hydra.main; other commands without
                   a run folder)
    validate.py    DictConfig -> TrainConfig (resolve once), and a run folder's config.yaml with this
                   machine's hardware
    redacted.py    Hydra's records of a run (.hydra/, multirun.yaml, log lines) with URL passwords `***`
    report.py      a user mistake -> one screen on stderr, exit 2

It imports Hydra, OmegaConf and trainer.config only: a bad config is reported before torch, Lightning
or transformers load. Nothing past the boundary sees a DictConfig or a raw override string.
"""

from trainer.boundary.compose import checked_args, compose, from_hydra
from trainer.boundary.conf import CONF_DIR, CommandLine, parse, register_resolvers
from trainer.boundary.invocation import Invocation
from trainer.boundary.report import USER_ERRORS, report_and_exit
from trainer.boundary.validate import from_composed, from_run_folder

__all__ = [
    "CONF_DIR",
    "USER_ERRORS",
    "CommandLine",
    "Invocation",
    "checked_args",
    "compose",
    "from_composed",
    "from_hydra",
    "from_run_folder",
    "parse",
    "register_resolvers",
    "report_and_exit",
]
