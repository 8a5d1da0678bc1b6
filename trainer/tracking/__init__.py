"""Experiment tracking behind one interface (base.py): `tracker=none` and `tracker=mlflow`.

    conf/tracker/none.yaml    NoTracker      (config/tracker.py)   base.NullTracker
    conf/tracker/mlflow.yaml  MlflowTracker                        mlflow.Mlflow

`for_config` chooses once; training and `trainer evaluate` only talk to the interface.
"""

from __future__ import annotations

from trainer.config import TrainConfig
from trainer.tracking.base import NullTracker, Tracker


def for_config(cfg: TrainConfig) -> Tracker:
    if cfg.tracker.kind == "mlflow":
        from trainer.tracking.mlflow import Mlflow

        return Mlflow(cfg)
    return NullTracker()


__all__ = ["NullTracker", "Tracker", "for_config"]
