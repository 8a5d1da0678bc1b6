"""Loading a PEFT adapter folder, whichever of the two layouts the export wrote.

An adapter on a named base (hub id, or a folder outside the run) names it in `adapter_config.json`;
`peft.AutoPeftModelForCausalLM` loads that base and the adapter over it. An adapter trained on a
from-scratch base embeds the base in the same folder (config.json + weights beside the adapter): it is
loaded from the folder itself, so a moved or copied run folder still loads, whatever
`base_model_name_or_path` says (an absolute path from where it was exported).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")


def embeds_base(folder: Path) -> bool:
    """Whether `folder` holds its base model beside the adapter."""
    return (folder / "adapter_config.json").is_file() and (folder / "config.json").is_file()


def _plain_base(folder: Path, **kwargs: Any) -> Any:
    """The base model alone. Loaded from the folder itself, transformers would also put the adapter on
    it (its "model with an embedded adapter"), and a model merged from that still saves as an adapter;
    so the base is loaded from a view of the folder without the adapter files (links, no copy)."""
    from transformers import AutoModelForCausalLM

    with tempfile.TemporaryDirectory(prefix="base-") as view:
        for path in folder.iterdir():
            if path.is_file() and path.name not in ADAPTER_FILES:
                (Path(view) / path.name).symlink_to(path.resolve())
        return AutoModelForCausalLM.from_pretrained(view, **kwargs)


def load_adapter(folder: Path, **kwargs: Any) -> Any:
    """The adapter of `folder` on its base, as a PeftModel (`merge_and_unload` works on it); `kwargs`
    go to the base's `from_pretrained` (dtype, attn_implementation)."""
    if embeds_base(folder):
        from peft import PeftModel

        return PeftModel.from_pretrained(_plain_base(folder, **kwargs), folder)
    from peft import AutoPeftModelForCausalLM

    return AutoPeftModelForCausalLM.from_pretrained(folder, **kwargs)
