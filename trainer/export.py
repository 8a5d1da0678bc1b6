"""Write the trained model in Hugging Face format: safetensors, config, tokenizer, generation config.

With a sharded strategy (FSDP2, FSDP1, DeepSpeed ZeRO-3) no rank holds the whole model, so the full
weights are gathered first, collectively on every rank, into rank 0's CPU memory; rank 0 then saves them
through the model's own `save_pretrained`, so the folder is the same as for an unsharded run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

# The LightningModule holds the HF model as `self.model`; strategies gather the LightningModule's keys.
MODULE_PREFIX = "model."


def export_model(
    model: Any, tokenizer: Any, out: Path, state_dict: dict[str, torch.Tensor] | None = None
) -> Path:
    """A full model is saved as is; a PEFT model as its adapter (peft.AutoPeftModelForCausalLM loads it).

    `state_dict` (keys as in `model.state_dict()`) replaces the model's own tensors, for sharded models
    whose parameters are only local shards.
    """
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
    extra = {} if state_dict is None else {"state_dict": state_dict}
    model.save_pretrained(out, safe_serialization=True, **extra)
    tokenizer.save_pretrained(out)
    generation.save_pretrained(out)
    return out


def _strip_module_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k.removeprefix(MODULE_PREFIX): v for k, v in state.items() if k.startswith(MODULE_PREFIX)}


def _share_tied(state: dict[str, torch.Tensor], model: Any) -> dict[str, torch.Tensor]:
    """Gathering returns one copy per key, so a tied parameter (input and output embeddings) comes back
    as two tensors; pointing its keys at one tensor again lets `save_pretrained` store it once, as it
    does for an unsharded model."""
    owners: dict[int, str] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        owner = owners.setdefault(id(param), name)
        if owner != name and owner in state and name in state:
            state[name] = state[owner]
    return state


def gather_full_state_dict(trainer: Any) -> dict[str, torch.Tensor] | None:
    """The whole model's weights on rank 0's CPU (an empty dict elsewhere), or None when the model is not
    sharded and rank 0 already holds every weight. A collective: call it on every rank."""
    from lightning.pytorch.strategies import DeepSpeedStrategy, FSDPStrategy, ModelParallelStrategy

    strategy = trainer.strategy
    if isinstance(strategy, (ModelParallelStrategy, FSDPStrategy)):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        # The strategy's root (FSDP1 wraps the LightningModule itself), so FSDP1 units unshard too.
        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return _strip_module_prefix(get_model_state_dict(strategy.model, options=options))
    if isinstance(strategy, DeepSpeedStrategy) and strategy.zero_stage_3:
        # Gathers one layer at a time onto rank 0 (the same call accelerate's get_state_dict uses).
        state = strategy.deepspeed_engine._zero3_consolidated_16bit_state_dict()
        return _strip_module_prefix(state) if state is not None else {}
    return None


def export_run_model(trainer: Any, module: Any, tokenizer: Any, out: Path) -> Path | None:
    """Called on every rank at the end of training; rank 0 writes `out` and gets its path, others None."""
    state = gather_full_state_dict(trainer)
    if not trainer.is_global_zero:
        return None
    if state is not None:
        state = _share_tied(state, module.model)
    return export_model(module.model, tokenizer, out, state_dict=state)
