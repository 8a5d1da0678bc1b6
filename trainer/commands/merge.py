"""`trainer merge infer.source=RUN_OR_ADAPTER [infer.out=DIR]`: fold a PEFT adapter into a full model.

The result is a plain Hugging Face model folder (weights, config, tokenizer, generation config) that
`AutoModelForCausalLM.from_pretrained` loads without peft, and that `trainer generate` / `evaluate` take
as `infer.source`. The merge itself is `trainer.models.merge.merge_adapter`; this is only the entry: it
finds the adapter (a run folder's model/, or an adapter folder), picks the output folder, and refuses a
source that is not an adapter. No run folder is created.
"""

from __future__ import annotations

from pathlib import Path

from trainer.boundary import Invocation
from trainer.commands.usage import run_command
from trainer.config import TrainConfig

USAGE = "trainer merge infer.source=RUN_OR_ADAPTER [infer.out=DIR]"


def output_folder(cfg: TrainConfig, adapter: Path, run_dir: Path | None) -> Path:
    """infer.out, else beside the adapter: <run>/model_merged for a run, <adapter>/merged otherwise."""
    if cfg.infer.out is not None:
        return Path(cfg.infer.out).expanduser().resolve()
    from trainer.training.export import MERGED_FOLDER

    return run_dir / MERGED_FOLDER if run_dir is not None else adapter / "merged"


def merge(inv: Invocation) -> Path:
    from trainer.inference.source import load_error, require_adapter, resolve_source
    from trainer.models.merge import merge_adapter

    src = resolve_source(inv)
    adapter = require_adapter(src)
    try:
        out = merge_adapter(adapter, output_folder(src.cfg, adapter, src.run_dir))
    except (OSError, ValueError) as err:
        raise load_error(src, err, "merge") from None
    print(f"trainer merge: {adapter} -> {out}")
    print(f"  a full model: AutoModelForCausalLM.from_pretrained('{out}'), or infer.source={out}")
    return out


def main(args: list[str]) -> None:
    run_command("merge", __doc__, USAGE, args, merge, infer_keys="merge")
