"""Parameter counts from the model built on the meta device: no memory, no weights downloaded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from trainer.config.model import ModelConfig
from trainer.config.peft import LoraConfig, NoPeft
from trainer.models.peft import apply_peft


@dataclass(frozen=True)
class ParamCounts:
    total: int
    trainable: int

    @property
    def trainable_pct(self) -> float:
        return 100.0 * self.trainable / self.total


def count_params(model: Any) -> ParamCounts:
    params = list(model.parameters())
    return ParamCounts(
        total=sum(p.numel() for p in params), trainable=sum(p.numel() for p in params if p.requires_grad)
    )


def meta_param_counts(cfg: ModelConfig, config: Any, peft_cfg: NoPeft | LoraConfig) -> ParamCounts:
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=cfg.trust_remote_code)
        model = apply_peft(model, peft_cfg)
    return count_params(model)
