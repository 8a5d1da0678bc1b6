"""A trial of an Optuna search reports its validation value to the study after every validation, and
stops when the study's pruner says the trial is worse than the others were at the same step.

The sweeping process (trainer/sweeps/search.py) puts the study's storage, name and objective in the
environment, and marks the trial with the job folder it launched it in; the job finds its trial by that
folder's name. Rank 0 talks to the study; its decision is broadcast, so every rank stops at the same step.
A pruned trial ends like a finished run (checkpoint, export, result.json); the sweeper then records
it as pruned.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import lightning as L

from trainer.config import TrainConfig
from trainer.config.hparams_search import JOB_ATTR, PRUNED_ATTR, SEARCH_ENV, PrunerConfig


def make_pruner(settings: PrunerConfig) -> Any:
    """The study's pruner. Optuna keeps no pruner in the storage: the sweeping process and every trial's
    job build the same one from `hydra.sweeper.pruner`."""
    import optuna

    if settings.kind == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(
        n_startup_trials=settings.startup_trials, n_warmup_steps=settings.warmup_steps
    )


class TrialPruning(L.Callback):
    def __init__(self, facts: dict[str, str], job: str) -> None:
        self.facts, self.job = facts, job
        self.trial: Any = None
        self.pruned_at: int | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not trainer.is_global_zero or self.trial is not None:
            return
        import optuna

        study = optuna.load_study(
            study_name=self.facts["study"],
            storage=self.facts["storage"],
            pruner=make_pruner(PrunerConfig.model_validate(self.facts["pruner"])),
        )
        running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        mine = [t for t in running if t.user_attrs.get(JOB_ATTR) == self.job]
        if mine:  # Optuna's Trial needs the storage id, which only FrozenTrial's private field holds
            self.trial = optuna.trial.Trial(study, mine[0]._trial_id)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from lightning.pytorch.trainer.states import TrainerFn

        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        prune = False
        value = trainer.callback_metrics.get(self.facts["metric"])
        if self.trial is not None and value is not None:
            step = trainer.global_step
            self.trial.report(float(value), step)
            prune = step > 0 and self.trial.should_prune()
            if prune:
                self.trial.set_user_attr(PRUNED_ATTR, step)
        if trainer.strategy.broadcast(prune, src=0):
            self.pruned_at = trainer.global_step
            trainer.should_stop = True
            if trainer.is_global_zero:
                print(
                    f"trainer: trial pruned at step {trainer.global_step}: its {self.facts['metric']} "
                    f"({float(value or 0):.4f}) is worse than the median of earlier trials at that step",
                    flush=True,
                )


def pruning_callbacks(cfg: TrainConfig) -> list[L.Callback]:
    """The pruning callback for a job of a search (none for any other run)."""
    text = os.environ.get(SEARCH_ENV)
    if not text or cfg.run.sweep is None:
        return []
    return [TrialPruning(json.loads(text), Path(cfg.run.dir).name)]  # the job folder names the trial
