"""`run:` where a run lives and how it is named (top-level keys in trainer/conf/train.yaml)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from trainer.config.base import StrictModel


class SweepInfo(StrictModel):
    """Filled in by the launcher for multirun jobs (not by users): tags the tracker run."""

    id: str = Field(description="Name of the sweep folder under outputs/<experiment>/sweeps/.")
    job: int = Field(description="Index of this job within the sweep.")
    label: str | None = Field(None, description="This job's swept values (lr=0.001,seed=2): its run name.")
    parent: str | None = Field(None, description="The tracker run of the whole sweep (MLflow parent run).")


class RunConfig(StrictModel):
    experiment: str = Field("default", description="Experiment name: groups runs in outputs/ and MLflow.")
    name: str = Field(
        description="Run name: the folder outputs/<experiment>/<name>/ and the MLflow run name."
    )
    dir: str = Field(description="This run's folder (set from Hydra's output dir; tests pass their own).")
    output_root: str = Field("outputs", description="Root of all run folders and the default MLflow store.")
    seed: int = Field(1234, description="Seed for model init, data order and dropout.")
    tags: dict[str, str] = Field(default_factory=dict, description="Free-form tags added to the MLflow run.")
    description: str | None = Field(None, description="Free text stored with the run.")
    resume: str = Field(
        "auto",
        description="auto (continue from <run dir>/checkpoints/last.ckpt when it exists), none, or a "
        "checkpoint path.",
    )
    resume_changed: Literal["refuse", "allow"] = Field(
        "refuse",
        description="refuse a resume whose model, data, optimizer or batch settings differ from the "
        "checkpoint's (allow: resume anyway, with a warning listing the differences).",
    )
    sweep: SweepInfo | None = Field(None, description="Set by the launcher in multirun mode; leave null.")

    @property
    def resume_path(self) -> str | None:
        """The checkpoint named by `resume` when it is a path; None for auto and none."""
        return None if self.resume in ("auto", "none") else self.resume
