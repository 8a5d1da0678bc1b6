"""`tracker:` where metrics go (tagged union on `kind`, mirrors conf/tracker/)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PositiveFloat

from trainer.config.base import StrictModel


class NoTracker(StrictModel):
    kind: Literal["none"] = Field("none", description="No tracking: metrics go to the log only.")


class MlflowTracker(StrictModel):
    kind: Literal["mlflow"] = Field("mlflow", description="Log params, metrics and artifacts to MLflow.")
    uri: str | None = Field(
        None,
        description="Tracking URI (sqlite:///..., http://host:port); null = sqlite under run.output_root.",
    )
    experiment: str | None = Field(None, description="MLflow experiment; null = run.experiment.")
    log_model: bool = Field(
        False, description="Log the exported model as an MLflow model (a logged model of this run)."
    )
    register_as: str | None = Field(
        None, description="Also register that model in the model registry under this name (logs it)."
    )
    system_metrics_every_s: PositiveFloat | None = Field(
        10.0, description="MLflow's system metrics (CPU, memory, disk, GPU) every N seconds; null = off."
    )


TrackerConfig = Annotated[NoTracker | MlflowTracker, Field(discriminator="kind")]
