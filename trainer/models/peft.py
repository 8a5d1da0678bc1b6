"""Wrap a model with a PEFT adapter according to `peft:`; `none` returns it unchanged.

A quantized base (QLoRA on 4 bits, LoRA on int8) is first prepared with
`peft.prepare_model_for_kbit_training`: base weights frozen, the remaining 16-bit weights (norms,
embeddings) upcast to fp32 for stable training, and input gradients enabled for gradient checkpointing.
"""

from __future__ import annotations

from typing import Any

from trainer.config.peft import LoraConfig, NoPeft


def apply_peft(model: Any, cfg: NoPeft | LoraConfig) -> Any:
    if isinstance(cfg, NoPeft):
        return model
    import peft

    if getattr(model, "is_quantized", False):
        # Keep build_model's gradient-checkpointing choice (peft would switch it on); read from the
        # modules, as transformers does, because its property was renamed in v5.
        checkpointing = any(getattr(m, "gradient_checkpointing", False) for m in model.modules())
        model = peft.prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing)
    lora = peft.LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=cfg.target_modules,
        task_type="CAUSAL_LM",
    )
    return peft.get_peft_model(model, lora)
