"""The frozen reference model of DPO, IPO and KTO: where its log-probs come from.

Two ways, chosen by `objective.reference` (trainer/config/objective.py):
- `AdaptersOff`: under LoRA the reference is the policy itself with its adapters disabled, so no second
  copy of the model is held: the frozen base IS the starting model.
- `FrozenCopy`: for full fine-tuning, a copy of the starting weights taken before training, frozen and
  kept out of the LightningModule's module tree, so it is neither trained, nor checkpointed, nor wrapped
  by the strategy. On resume it is taken again from the same source (the model folder, or the seeded
  from-scratch build), so the reference of a resumed run is the one it started with.
"""

from __future__ import annotations

import copy as _copy
from collections.abc import Callable
from typing import Any

import torch

Forward = Callable[[dict[str, torch.Tensor]], torch.Tensor]  # a batch -> logits


def peft_model(model: Any) -> Any:
    """The PeftModel under what a strategy wrapped around it (torch.compile's `_orig_mod`)."""
    inner = getattr(model, "_orig_mod", model)
    if not hasattr(inner, "disable_adapter"):
        raise TypeError("objective.reference=adapters_off needs a PEFT model (peft=lora)")
    return inner


class AdaptersOff:
    """Reference logits: the policy's own forward with the LoRA adapters switched off."""

    kind = "adapters_off"

    def __init__(self, model: Any) -> None:
        self.model = peft_model(model)

    def logits(self, policy: Forward, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.no_grad(), self.model.disable_adapter():
            return policy(batch)

    def parameters(self) -> int:
        """Parameters held for the reference alone: none."""
        return 0


class FrozenCopy:
    """Reference logits from a frozen copy of the starting model."""

    kind = "copy"

    def __init__(self, model: torch.nn.Module, copy: bool = True) -> None:
        """`copy=False` takes `model` itself as the reference (a model built for that purpose)."""
        self.model = (_copy.deepcopy(model) if copy else model).eval().requires_grad_(False)

    def place_like(self, policy: torch.nn.Module) -> None:
        """Move to the policy's device and dtype (Lightning moves and converts only registered modules)."""
        param = next(policy.parameters())
        first = next(self.model.parameters())
        if first.device != param.device or first.dtype != param.dtype:
            self.model.to(device=param.device, dtype=param.dtype)

    def logits(self, policy: Forward, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        from trainer.data.collate import model_inputs

        with torch.no_grad():
            return self.model(**model_inputs(batch), use_cache=False).logits

    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


Reference = AdaptersOff | FrozenCopy


def build_reference(kind: str | None, model: torch.nn.Module) -> Reference | None:
    """`kind` is `reference_kind(objective, peft)`: adapters_off | copy | None (no reference)."""
    if kind is None:
        return None
    return AdaptersOff(model) if kind == "adapters_off" else FrozenCopy(model)
