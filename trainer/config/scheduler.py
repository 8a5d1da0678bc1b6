"""`scheduler:` learning-rate schedule with warmup (mirrors conf/scheduler/)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, NonNegativeInt, model_validator

from trainer.config.base import StrictModel


class SchedulerConfig(StrictModel):
    name: Literal["cosine", "linear", "constant"] = Field("cosine", description="Shape after warmup.")
    warmup_steps: NonNegativeInt = Field(0, description="Linear warmup length in optimizer steps.")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Or warmup as a fraction of total steps.")
    min_lr_ratio: float = Field(
        0.1, ge=0, le=1, description="Final lr as a fraction of the peak (cosine/linear)."
    )

    @model_validator(mode="after")
    def _one_warmup(self) -> SchedulerConfig:
        if self.warmup_steps and self.warmup_ratio:
            raise ValueError(
                "warmup_steps and warmup_ratio are both set: use one of them, e.g. scheduler.warmup_steps=N "
                "scheduler.warmup_ratio=0"
            )
        return self

    def warmup_for(self, total_steps: int) -> int:
        return self.warmup_steps or int(self.warmup_ratio * total_steps)
