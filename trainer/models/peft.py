"""Wrap a model with a PEFT adapter according to `peft:`; `none` returns it unchanged."""

from __future__ import annotations

from typing import Any

from trainer.config.peft import LoraConfig, NoPeft


def apply_peft(model: Any, cfg: NoPeft | LoraConfig) -> Any:
    if isinstance(cfg, NoPeft):
        return model
    import peft

    lora = peft.LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=cfg.target_modules,
        task_type="CAUSAL_LM",
    )
    return peft.get_peft_model(model, lora)
