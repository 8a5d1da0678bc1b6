"""Which modules of a Hugging Face model are shard units: its decoder layers.

They are found by the class names a transformers model lists in `_no_split_modules` (the blocks that
must stay whole on one device: the same list accelerate wraps by). Searching every submodule for that
list sees through wrappers, so a PEFT `PeftModel` or a `LightningModule` around the model is handled
without knowing their attribute paths.
"""

from __future__ import annotations

from torch import nn


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The model's repeated blocks (e.g. every `LlamaDecoderLayer`), outermost first."""
    names: set[str] = set()
    for module in model.modules():
        names.update(getattr(module, "_no_split_modules", None) or ())
    layers = [m for m in model.modules() if type(m).__name__ in names]
    if not layers:
        raise ValueError(
            f"found no decoder layers to shard in {type(model).__name__}: no submodule is one of the classes "
            f"listed in `_no_split_modules` ({sorted(names) or 'none listed'})"
        )
    return layers


# The LightningModule holds the HF model as `self.model`; strategies gather the LightningModule's keys.
MODULE_PREFIX = "model."


def strip_module_prefix(state: dict) -> dict:
    """A LightningModule's state dict as the inner model's: keys without the `model.` prefix."""
    return {k.removeprefix(MODULE_PREFIX): v for k, v in state.items() if k.startswith(MODULE_PREFIX)}
