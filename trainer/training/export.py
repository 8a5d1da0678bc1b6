"""Write the trained model in Hugging Face format: safetensors, config, tokenizer, generation config,
and a model card (README.md, trainer.training.model_card).

A full fine-tuning run writes the whole model to `<run>/model` (sharded above
`trainer.export_max_shard_size`, with `model.safetensors.index.json`). A PEFT run writes its adapter
there (`adapter_config.json` + `adapter_model.safetensors`), which `peft.AutoPeftModelForCausalLM` loads
over the base named in the adapter config. A from-scratch base (the built-in tiny model) has no hub id
or folder to be loaded from, so it is saved into the same folder (config.json + model.safetensors beside
the adapter): transformers loads such a folder as a model with its adapter (`AutoModelForCausalLM`,
`pipeline`), from wherever the run folder is moved, and `PeftModel.from_pretrained(base, folder)` gives
the PeftModel. The adapter config names the folder by its absolute path at export, which peft's
`AutoPeftModelForCausalLM` needs (it resolves the name against the working directory) as long as the
folder stays where it was. With `peft.merge` rank 0 then merges the saved adapter into its base
(trainer.models.merge) and writes `<run>/model_merged/`: the same whatever the strategy.

The exported tokenizer carries the chat template of the training prompt format (prompt_format.py), so
chat inference prompts the model as training did.

With a sharded strategy (FSDP2, FSDP1, DeepSpeed ZeRO-3) no rank holds the whole model, so the full
weights are gathered first, collectively on every rank, into rank 0's CPU memory; rank 0 then saves them
through the model's own `save_pretrained`, so the folder is the same as for an unsharded run.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trainer.models.peft import is_peft
from trainer.parallel import Parallel
from trainer.training import prompt_format
from trainer.training.model_card import CardFacts, Loading, write_card

# A PeftModel's state-dict keys are the base model's under this prefix (LoRA layers inside).
PEFT_PREFIX = "base_model.model."
MERGED_FOLDER = "model_merged"


@dataclass(frozen=True)
class Exported:
    """What the export wrote: `model` is a full model, or a PEFT adapter when `adapter` is true (with
    its base model in the same folder when `embedded_base`)."""

    model: Path
    adapter: bool
    merged: Path | None = None
    embedded_base: bool = False

    def describe(self) -> dict[str, str]:
        if self.adapter and not self.embedded_base:
            how = "peft.AutoPeftModelForCausalLM.from_pretrained"
        else:  # a base with its adapter loads as one model
            how = "AutoModelForCausalLM.from_pretrained" + (": base + adapter" if self.adapter else "")
        rows = {"model": f"{self.model}  ({how})"}
        if self.merged is not None:
            rows["merged model"] = f"{self.merged}  (AutoModelForCausalLM.from_pretrained)"
        return rows


def _generation_config(config: Any, tokenizer: Any) -> Any:
    from transformers import GenerationConfig

    return GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id if config.pad_token_id is not None else tokenizer.pad_token_id,
        max_new_tokens=64,
        do_sample=False,
    )


def base_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The base model's own keys and tensors inside a PeftModel's state dict: LoRA/DoRA tensors and the
    trained copies of modules_to_save dropped, wrapped layers (`.base_layer.`, `.original_module.`)
    under their plain names again."""
    base = {}
    for key, value in state.items():
        if not key.startswith(PEFT_PREFIX):
            continue
        name = key.removeprefix(PEFT_PREFIX)
        if ".lora_" in name or ".modules_to_save." in name:
            continue
        base[name.replace(".base_layer.", ".").replace(".original_module.", ".")] = value
    return base


def save_base(model: Any, state: dict[str, torch.Tensor], out: Path, max_shard_size: int | str) -> Path:
    """Save the frozen base under a PeftModel as a plain HF model: an empty (meta) model of the same class
    takes the base tensors by reference, so no copy of the weights is made."""
    inner = model.get_base_model()
    with torch.device("meta"):
        base = type(inner)(inner.config)
    base.load_state_dict(base_state_dict(state), strict=True, assign=True)
    base.tie_weights()
    base.generation_config = inner.generation_config
    base.save_pretrained(out, max_shard_size=max_shard_size)
    return out


def _base_reference(model: Any) -> str | None:
    """The adapter's base as given to transformers; a local folder as an absolute path, so the adapter
    loads from any working directory."""
    name = model.peft_config[model.active_adapter].base_model_name_or_path
    return str(Path(name).resolve()) if name and Path(name).is_dir() else name


def export_model(
    model: Any,
    tokenizer: Any,
    out: Path,
    state_dict: dict[str, torch.Tensor] | None = None,
    max_shard_size: int | str = "5GB",
    save_base_model: bool = False,
) -> Path:
    """A full model is saved as is; a PEFT model as its adapter (peft.AutoPeftModelForCausalLM loads it),
    and with `save_base_model` its base too, into `out` itself, which the adapter config then names.

    `state_dict` (keys as in `model.state_dict()`) replaces the model's own tensors, for sharded models
    whose parameters are only local shards.
    """
    out.mkdir(parents=True, exist_ok=True)
    base = getattr(model, "base_model", model)
    generation = _generation_config(getattr(base, "config", None) or model.config, tokenizer)
    model.generation_config = generation
    extra = {} if state_dict is None else {"state_dict": state_dict}
    if is_peft(model):
        peft_config = model.peft_config[model.active_adapter]
        before = peft_config.base_model_name_or_path
        if save_base_model:
            state = state_dict if state_dict is not None else model.state_dict()
            peft_config.base_model_name_or_path = str(save_base(model, state, out, max_shard_size).resolve())
        else:
            peft_config.base_model_name_or_path = _base_reference(model)
        try:
            model.save_pretrained(out, safe_serialization=True, **extra)
        finally:
            peft_config.base_model_name_or_path = before
    else:
        model.save_pretrained(out, safe_serialization=True, max_shard_size=max_shard_size, **extra)
    tokenizer.save_pretrained(out)
    generation.save_pretrained(out)
    return out


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


def export_run_model(
    trainer: Any, module: Any, parallel: Parallel, tokenizer: Any, out: Path, card: CardFacts | None = None
) -> Exported | None:
    """Called on every rank at the end of training; rank 0 writes `out` (and with peft.merge the merged
    model beside it), with a model card from `card` in each, and gets what it wrote, other ranks None."""
    cfg = module.cfg
    state = parallel.full_state_dict(trainer)
    if not trainer.is_global_zero:
        return None
    _start_export(out)
    if state is not None:
        state = _share_tied(state, module.model)
    adapter = is_peft(module.model)
    embedded = adapter and cfg.model.from_scratch
    shard = cfg.trainer.export_max_shard_size
    fmt = prompt_format.prompt_format(cfg, tokenizer)
    with prompt_format.carrying(tokenizer, fmt):
        export_model(
            module.model, tokenizer, out, state_dict=state, max_shard_size=shard, save_base_model=embedded
        )
    merged = None
    if adapter and getattr(cfg.peft, "merge", False):
        from trainer.models.merge import merge_adapter

        merged = merge_adapter(out, out.parent / MERGED_FOLDER, max_shard_size=shard)
    exported = Exported(out, adapter, merged, embedded)
    if card is not None:
        write_card(out, cfg, card, fmt, tokenizer, Loading(adapter, embedded))
        if merged is not None:
            write_card(merged, cfg, card, fmt, tokenizer, Loading(False, False))
    _finish_export(out, trainer.global_step, exported)
    return exported


# Written once the export is whole: a rerun of a complete run trusts the model folder only with it
# (a kill during save_pretrained leaves a folder that looks like a model).
DONE = "export.json"


def _start_export(out: Path) -> None:
    """A previous attempt's files go first: stale shards would mix with the new ones."""
    (out.parent / DONE).unlink(missing_ok=True)
    for folder in (out, out.parent / MERGED_FOLDER):
        shutil.rmtree(folder, ignore_errors=True)


def _finish_export(out: Path, step: int, exported: Exported) -> None:
    record = {"step": step, "model": str(out), "adapter": exported.adapter, "merged": str(exported.merged)}
    partial = out.parent / f"{DONE}.partial"
    partial.write_text(json.dumps(record, indent=2))
    os.replace(partial, out.parent / DONE)


def exported_at(run_dir: Path) -> int | None:
    """The step whose model the run folder's export holds, None when no export finished."""
    try:
        return int(json.loads((run_dir / DONE).read_text())["step"])
    except (OSError, ValueError, KeyError):
        return None
