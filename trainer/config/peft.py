"""`peft:` parameter-efficient fine-tuning (tagged union on `method`, mirrors conf/peft/)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PositiveInt

from trainer.config.base import StrictModel


class NoPeft(StrictModel):
    method: Literal["none"] = Field("none", description="Full fine-tuning: every parameter is trained.")


class LoraConfig(StrictModel):
    method: Literal["lora"] = Field(
        "lora", description="LoRA: train low-rank updates of the target modules; the base stays frozen."
    )
    r: PositiveInt = Field(8, description="Rank of the update matrices.")
    alpha: float = Field(16.0, gt=0, description="Scale: the update is multiplied by alpha / r.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear", description="Module names to adapt, or all-linear."
    )


class QLoraConfig(LoraConfig):
    method: Literal["qlora"] = Field(  # type: ignore[assignment]
        "qlora", description="QLoRA: LoRA on a 4-bit base (model.quantize=nf4 or fp4; CUDA + bitsandbytes)."
    )


PeftConfig = Annotated[NoPeft | LoraConfig | QLoraConfig, Field(discriminator="method")]
