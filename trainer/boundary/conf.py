"""Where the configs live and how a command line reaches them: the packaged conf/, the `${asset:}`
resolver, and Hydra's own flags (`--config-dir`, `-cn`, `-m`, `-sc`, ...) told apart from overrides.

conf/ ships inside the package (trainer/conf), so an installed wheel finds it from any folder. A user's
own configs join through Hydra's search path: `--config-dir DIR` or `hydra.searchpath=[file://DIR]`,
e.g. a DIR/experiment/mine.yaml chosen with experiment=mine.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from trainer.assets import asset_path
from trainer.config.launcher import slurm_minutes, slurm_options

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
APP_DIR = (
    Path(__file__).resolve().parents[1] / "commands"
)  # where @hydra.main is (a relative -cp starts here)
CONFIG_NAME = "train"


def register_resolvers() -> None:
    """`${asset:tokenizer}` -> absolute path of a file the project ships; `${slurm_minutes:}` and
    `${slurm_options:}` turn launcher=slurm's keys into what Hydra's submitit launcher reads
    (conf/launcher/slurm.yaml)."""
    resolvers = {"asset": asset_path, "slurm_minutes": slurm_minutes, "slurm_options": slurm_options}
    for name, fn in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


@dataclass(frozen=True)
class CommandLine:
    """A `trainer` command line as Hydra reads it: overrides apart from Hydra's flags."""

    args: list[str]  # everything, in order (what Hydra itself is given)
    overrides: list[str] = field(default_factory=list)
    config_dir: str | None = None
    config_path: str | None = None  # -cp DIR: a primary config of one's own (then `valid` is False)
    config_name: str = CONFIG_NAME
    multirun: bool = False
    completion: bool = False  # -sc: shell completion (install / query)
    informational: bool = False  # --help, --hydra-help, --info, --cfg, --version: nothing runs
    valid: bool = True  # False when Hydra's own parser refuses the flags: Hydra reports that itself

    @property
    def searchpath(self) -> list[str]:
        """Overrides that put the user's config folders on the search path, for our own compose calls
        (Hydra's app gets `--config-dir` itself): the folder of `--config-dir` and any
        `hydra.searchpath=[...]` given on the command line."""
        extra = []
        if self.config_dir is not None:
            extra.append(f"hydra.searchpath=[file://{os.path.abspath(self.config_dir)}]")
        return extra + [o for o in self.overrides if o.lstrip("+").startswith("hydra.searchpath=")]


def parse(args: list[str]) -> CommandLine:
    """Split `args` with Hydra's own argument parser, so flags and their values are never mistaken for
    overrides (`-sc install=bash`, `-cd DIR`). The parser is internal to Hydra (pinned below 1.4)."""
    from hydra._internal.utils import get_args_parser

    parser = get_args_parser()
    parser.exit_on_error = False
    try:
        ns, unknown = parser.parse_known_args(args)
    except (argparse.ArgumentError, SystemExit):
        return CommandLine(list(args), valid=False)
    if unknown:
        return CommandLine(list(args), valid=False)
    if ns.config_path:  # a primary config of one's own (-cp): Hydra alone knows its groups
        overrides = list(ns.overrides)
        return CommandLine(list(args), overrides, ns.config_dir, config_path=ns.config_path, valid=False)
    return CommandLine(
        list(args),
        overrides=list(ns.overrides),
        config_dir=ns.config_dir,
        config_name=ns.config_name or CONFIG_NAME,
        multirun=bool(ns.multirun),
        completion=bool(ns.shell_completion),
        informational=bool(ns.help or ns.hydra_help or ns.info or ns.cfg),
    )
