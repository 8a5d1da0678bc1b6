"""Merge a saved LoRA/DoRA adapter into its base model and save the result as a plain HF model.

Works from the adapter folder alone (what `<run>/model` holds for PEFT runs, with its base inside when
the base was trained from scratch: adapter_folder.py), so it is the same after any strategy and can run
later, on another machine, through `trainer merge`. The base is loaded as its config says
(`dtype="auto"`: bf16 stays bf16) and unquantized: the adapter of a QLoRA run is merged into the 16-bit
base, which is what the 4-bit weights approximate; merging into the 4-bit weights themselves would round
the update away (peft warns it "may get different generations due to rounding errors").
"""

from __future__ import annotations

from pathlib import Path

from trainer.models.adapter_folder import load_adapter

GENERATION_CONFIG = "generation_config.json"


def merge_adapter(adapter_dir: Path, out: Path, *, max_shard_size: int | str = "5GB") -> Path:
    """Load `adapter_dir` with its base, fold the adapter into the base weights (`merge_and_unload`) and
    write `out`: weights (sharded above `max_shard_size`), config, tokenizer, generation config."""
    from transformers import AutoTokenizer, GenerationConfig

    adapter_dir, out = Path(adapter_dir), Path(out)
    model = load_adapter(adapter_dir, dtype="auto")
    merged = model.merge_and_unload()
    if (adapter_dir / GENERATION_CONFIG).exists():
        merged.generation_config = GenerationConfig.from_pretrained(adapter_dir)
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out, safe_serialization=True, max_shard_size=max_shard_size)
    AutoTokenizer.from_pretrained(adapter_dir).save_pretrained(out)
    return out
