"""`optimizer:` (mirrors conf/optimizer/)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from trainer.config.base import StrictModel


class AdamWConfig(StrictModel):
    name: Literal["adamw"] = Field("adamw", description="Optimizer (only adamw today).")
    lr: float = Field(3e-3, gt=0, description="Peak learning rate.")
    betas: tuple[float, float] = Field((0.9, 0.95), description="Adam beta1, beta2.")
    eps: float = Field(1e-8, gt=0, description="Adam epsilon.")
    weight_decay: float = Field(
        0.01, ge=0, description="Decoupled weight decay (not applied to norms/biases)."
    )


OptimizerConfig = AdamWConfig
