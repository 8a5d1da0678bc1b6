"""Loading a PEFT adapter folder, whichever of the two layouts the export wrote.

An adapter on a named base (hub id, or a folder outside the run) names it in `adapter_config.json`;
`peft.AutoPeftModelForCausalLM` loads that base and the adapter over it. An adapter trained on a
from-scratch base embeds the base in the same folder (config.json + weights beside the adapter): it is
loaded from the folder itself, so a moved or copied run folder still loads, whatever
`base_model_name_or_path` says (an absolute path from where it was exported).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any


def embeds_base(folder: Path) -> bool:
    """Whether `folder` holds its base model beside the adapter."""
    return (folder / "adapter_config.json").is_file() and (folder / "config.json").is_file()


def load_adapter(folder: Path, **kwargs: Any) -> Any:
    """The adapter of `folder` on its base, as a PeftModel (`merge_and_unload` works on it); `kwargs`
    go to the base's `from_pretrained` (dtype, attn_implementation)."""
    if embeds_base(folder):
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        base = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
        # transformers already put the folder's adapter on the base; peft takes over that same adapter
        # ("default": no second copy, same logits, tests/test_export_outputs.py) but warns of "multiple
        # adapters" on seeing its config, which would only confuse here.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
            return PeftModel.from_pretrained(base, folder)
    from peft import AutoPeftModelForCausalLM

    return AutoPeftModelForCausalLM.from_pretrained(folder, **kwargs)
