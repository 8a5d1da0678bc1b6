"""`hparams_search=NAME`: an Optuna search instead of a grid (conf/hparams_search/, `hydra.sweeper`).

A preset picks the search sweeper (`override /hydra/sweeper: optuna`) and fills `hydra.sweeper` with
what this model checks: the objective, how many trials and how many at a time, the sampler, the pruner
and the search space. The space is written in Hydra's override grammar, the same as on the command line
(`optimizer.lr: tag(log, interval(1e-5, 1e-3))`, `peft.r: choice(8, 16, 32)`, `data.micro_batch:
range(1, 5)`); the boundary parses it (trainer/boundary/search.py) and the search runs in
trainer/sweeps/search.py.

Why under `hydra.sweeper` and not a key of the training config: it describes the sweep, not any one of
its runs; a trial's config is a plain training config and resumes, exports and validates as one.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, NonNegativeInt, PositiveInt, field_validator

from trainer.config.base import StrictModel

SEARCH_KEY = "hydra.sweeper"  # where the settings live, for messages
# What a trial's job needs to report to its study (storage, study, metric), as JSON in the environment:
# the sweeping process sets it, its jobs inherit it here and on Slurm (sbatch exports the environment).
SEARCH_ENV = "TRAINER_SEARCH"
# Trial user attributes: the job folder a trial ran in, the step its pruning stopped it at.
JOB_ATTR, PRUNED_ATTR = "job", "pruned_at_step"


class SamplerConfig(StrictModel):
    kind: Literal["tpe", "random"] = Field(
        "tpe", description="tpe: Bayesian (Optuna's TPE, after the startup trials); random: uniform."
    )
    seed: int | None = Field(None, description="Sampler seed: the same seed proposes the same trials.")
    startup_trials: NonNegativeInt = Field(
        3, description="TPE: random trials before the model of good and bad points is used."
    )


class PrunerConfig(StrictModel):
    kind: Literal["median", "none"] = Field(
        "median",
        description="median: stop a trial whose validation value is worse than the median of earlier "
        "trials at the same step; none: every trial runs to the end.",
    )
    startup_trials: NonNegativeInt = Field(2, description="Trials that finish before any is pruned.")
    warmup_steps: NonNegativeInt = Field(0, description="Optimizer steps before a trial may be pruned.")


class SearchConfig(StrictModel):
    """`hydra.sweeper` of the Optuna search sweeper."""

    metric: str = Field("val/loss", description="The objective: a validation metric of the run (val/...).")
    direction: Literal["minimize", "maximize"] = Field("minimize", description="Which way is better.")
    trials: PositiveInt = Field(description="Trials in the study, counting those of an earlier start.")
    parallel: PositiveInt = Field(
        1, description="Trials asked for and launched together (a Slurm array, or local processes)."
    )
    study: str | None = Field(None, description="Study name; null = the sweep folder's name.")
    storage: str | None = Field(
        None, description="Optuna storage URL; null = sqlite:///<sweep folder>/optuna.db (resumable)."
    )
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)  # type: ignore[arg-type]
    pruner: PrunerConfig = Field(default_factory=PrunerConfig)  # type: ignore[arg-type]
    params: dict[str, str] = Field(
        default_factory=dict,
        description="Search space: key -> interval(a, b) | tag(log, interval(a, b)) | range(a, b[, step]) "
        "| choice(x, y, ...). Sweep values on the command line are added.",
    )

    @field_validator("metric")
    @classmethod
    def _validation_metric(cls, value: str) -> str:
        if not value.startswith("val/"):
            raise ValueError(
                "the objective must be a validation metric (val/loss, val/exact_match, ...): training "
                "metrics measure the fit to the data the trial trained on"
            )
        return value
