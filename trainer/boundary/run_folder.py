"""A Hydra callback that probes the run (or sweep) folder before Hydra creates it.

Hydra makes `hydra.run.dir` (and `hydra.sweep.dir`) before the task function starts, so a read-only or
impossible `run.output_root` fails inside Hydra as a raw traceback, out of reach of the task's error
handling. `on_run_start` / `on_multirun_start` run just before that mkdir, with the same composed config:
`${now:}` is cached per config, so the folder probed is the folder Hydra then uses.
Registered in conf/train.yaml (`hydra.callbacks`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from trainer.boundary.report import report_and_exit
from trainer.disk import require_run_folder
from trainer.errors import UserError


class ProbeRunFolder(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _probe(config, "hydra.run.dir", "run folder")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _probe(config, "hydra.sweep.dir", "sweep folder")


def _probe(config: DictConfig, dir_key: str, what: str) -> None:
    try:
        folder, root = OmegaConf.select(config, dir_key), OmegaConf.select(config, "run.output_root")
    except OmegaConfBaseException:
        return  # an interpolation that cannot resolve is reported by validation, with its key
    if folder is None or root is None:
        return
    try:
        require_run_folder(Path(str(folder)), str(root), what)
    except UserError as err:
        report_and_exit(err)
