"""Wrap a model with a PEFT adapter according to `peft:`; `none` returns it unchanged.

A quantized base (QLoRA on 4 bits, LoRA on int8) is first prepared with
`peft.prepare_model_for_kbit_training`: base weights frozen, the remaining 16-bit weights (norms,
embeddings) upcast to fp32 for stable training, and input gradients enabled for gradient checkpointing.
"""

from __future__ import annotations

from typing import Any

from trainer.config.peft import LoraConfig, NoPeft


def lora_config(cfg: LoraConfig) -> Any:
    """Every key of `peft:` maps to one `peft.LoraConfig` argument; DoRA and QLoRA use the same class.
    A list of target names matches module-name suffixes; a string is a full-match regex (or all-linear)."""
    import peft

    return peft.LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=list(cfg.target_modules)
        if isinstance(cfg.target_modules, list)
        else cfg.target_modules,
        use_rslora=cfg.use_rslora,
        use_dora=cfg.use_dora,
        modules_to_save=list(cfg.modules_to_save) or None,
        task_type="CAUSAL_LM",
    )


def apply_peft(model: Any, cfg: NoPeft | LoraConfig) -> Any:
    if isinstance(cfg, NoPeft):
        return model
    import peft

    if getattr(model, "is_quantized", False):
        # Keep build_model's gradient-checkpointing choice (peft would switch it on); read from the
        # modules, as transformers does, because its property was renamed in v5.
        checkpointing = any(getattr(m, "gradient_checkpointing", False) for m in model.modules())
        model = peft.prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing)
    return peft.get_peft_model(model, lora_config(cfg))


def is_peft(model: Any) -> bool:
    return hasattr(model, "peft_config")
