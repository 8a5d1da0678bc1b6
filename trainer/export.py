"""Write the trained model in Hugging Face format: safetensors, config, tokenizer, generation config."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def export_model(model: Any, tokenizer: Any, out: Path) -> Path:
    """A full model is saved as is; a PEFT model as its adapter (peft.AutoPeftModelForCausalLM loads it)."""
    from transformers import GenerationConfig

    out.mkdir(parents=True, exist_ok=True)
    base = getattr(model, "base_model", model)
    config = getattr(base, "config", None) or model.config
    generation = GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id if config.pad_token_id is not None else tokenizer.pad_token_id,
        max_new_tokens=64,
        do_sample=False,
    )
    model.generation_config = generation
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    generation.save_pretrained(out)
    return out


def export_run_model(trainer: Any, module: Any, tokenizer: Any, out: Path) -> Path | None:
    """Called on every rank at the end of training; rank 0 writes `out` and gets its path, others None."""
    if not trainer.is_global_zero:
        return None
    return export_model(module.model, tokenizer, out)
