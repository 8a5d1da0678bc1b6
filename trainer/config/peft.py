"""`peft:` parameter-efficient fine-tuning (tagged union on `method`, mirrors conf/peft/).

DoRA is not a method of its own: it is LoRA with a learned magnitude (`use_dora`), and peft builds it from
the same `LoraConfig`, so `peft=dora` is conf/peft/dora.yaml with `method: lora` and `use_dora: true`.
A third tag would only duplicate every LoRA key (and QLoRA + DoRA would need a fourth).
"""

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
    target_modules: Annotated[list[str], Field(min_length=1)] | str = Field(
        "all-linear",
        description="Modules to adapt: a list of names ([q_proj,v_proj]), a regex that must match the "
        "whole module path ('.*\\.(q_proj|v_proj)'), or all-linear (every linear layer but the output).",
    )
    use_rslora: bool = Field(
        False, description="Rank-stabilized LoRA: scale by alpha / sqrt(r), which keeps high ranks learning."
    )
    use_dora: bool = Field(
        False, description="DoRA: also learn each output's magnitude (peft=dora); slower steps than LoRA."
    )
    modules_to_save: list[str] = Field(
        [], description="Modules trained in full and saved with the adapter (e.g. [embed_tokens,lm_head])."
    )
    merge: bool = Field(
        False,
        description="Also write <run>/model_merged: the adapter merged into its (unquantized) base model.",
    )


class QLoraConfig(LoraConfig):
    method: Literal["qlora"] = Field(  # type: ignore[assignment]
        "qlora", description="QLoRA: LoRA on a 4-bit base (model.quantize=nf4 or fp4; CUDA + bitsandbytes)."
    )


PeftConfig = Annotated[NoPeft | LoraConfig | QLoraConfig, Field(discriminator="method")]
