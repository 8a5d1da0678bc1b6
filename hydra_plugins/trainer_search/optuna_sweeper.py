"""`hydra/sweeper=optuna`: trainer's search sweeper, a thin Hydra shell around trainer/sweeps/search.py.

Hydra only instantiates sweepers defined under `hydra_plugins`; the settings are checked with
trainer/config/hparams_search.py before the sweep starts (trainer/boundary/search.py), so the
structured config here takes any values and leaves the checking to that one place. (No
`from __future__ import annotations`: Hydra loads plugin modules outside sys.modules, where a dataclass
with string annotations cannot be built.)
"""

from dataclasses import dataclass, field
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.trainer_search.optuna_sweeper.OptunaSweeper"
    metric: Any = "val/loss"
    direction: Any = "minimize"
    trials: Any = 10
    parallel: Any = 1
    study: Any = None
    storage: Any = None
    sampler: Any = field(default_factory=dict)
    pruner: Any = field(default_factory=dict)
    params: Any = field(default_factory=dict)


ConfigStore.instance().store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="trainer")


class OptunaSweeper(Sweeper):
    def __init__(self, **settings: Any) -> None:
        self.settings = settings
        self.config: Optional[DictConfig] = None
        self.launcher: Any = None
        self.hydra_context: Optional[HydraContext] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: List[str]) -> Any:
        from trainer.sweeps.search import run_search

        assert self.config is not None
        return run_search(self.config, self.launcher, arguments)
