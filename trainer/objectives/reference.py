"""The frozen reference model of DPO, IPO and KTO: where its log-probs come from.

Three ways, chosen by `objective.reference` (trainer/config/objective.py):
- `AdaptersOff`: under LoRA the reference is the policy itself with its adapters disabled, so no second
  copy of the model is held: the frozen base IS the starting model.
- `FrozenCopy`: for full fine-tuning, a copy of the starting weights taken before training, frozen and
  kept out of the LightningModule's module tree, so it is neither trained, nor checkpointed, nor wrapped
  by the strategy. On resume it is taken again from the same source (the model folder, or the seeded
  from-scratch build), so the reference of a resumed run is the one it started with.
- `Precomputed`: the starting model's log-probs of every pair (training and validation), computed by the
  policy itself in one pass before its first step and looked up by each pair's index in its set: no
  second copy, at the price of one forward pass over the data. The table is kept in checkpoints, as on
  resume the policy is no longer the starting model.
"""

from __future__ import annotations

import copy as _copy
from collections.abc import Callable, Iterable
from typing import Any

import torch

from trainer.objectives.losses import SequenceScores, score_sequences

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

    def scores(self, policy: Forward, batch: dict[str, torch.Tensor]) -> SequenceScores:
        return score_sequences(self.logits(policy, batch), batch["labels"])

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

    def scores(self, policy: Forward, batch: dict[str, torch.Tensor]) -> SequenceScores:
        return score_sequences(self.logits(policy, batch), batch["labels"])

    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


class Precomputed:
    """Reference log-probs of pairs, by index: row i of `logps` / `tokens` holds pair i's chosen and
    rejected sums (training pairs first, then validation pairs, as the data module numbers them)."""

    kind = "precomputed"

    def __init__(self) -> None:
        self.logps: torch.Tensor | None = None  # [N, 2] float32
        self.tokens: torch.Tensor | None = None  # [N, 2]

    @property
    def filled(self) -> bool:
        return self.logps is not None

    def fill(self, policy: Forward, batches: Iterable[dict[str, torch.Tensor]], total: int) -> None:
        """One pass of the (starting) policy over every pair, without gradients; `batches` carry `index`."""
        logps = torch.zeros(total, 2)
        tokens = torch.zeros(total, 2, dtype=torch.long)
        with torch.no_grad():
            for batch in batches:
                got = score_sequences(policy(batch), batch["labels"])
                index, pairs = batch["index"].cpu(), batch["index"].numel()
                logps[index] = got.logps.detach().float().cpu().view(2, pairs).T
                tokens[index] = got.tokens.detach().cpu().view(2, pairs).T
        self.logps, self.tokens = logps, tokens

    def scores(self, policy: Forward, batch: dict[str, torch.Tensor]) -> SequenceScores:
        assert self.logps is not None and self.tokens is not None, "fill() first"
        index = batch["index"].cpu()
        device = batch["input_ids"].device
        logps = self.logps[index].T.reshape(-1).to(device)  # chosen rows, then rejected rows
        return SequenceScores(logps=logps, tokens=self.tokens[index].T.reshape(-1).to(device))

    def state(self) -> dict[str, torch.Tensor] | None:
        return None if self.logps is None else {"logps": self.logps, "tokens": self.tokens}

    def load(self, state: dict[str, torch.Tensor]) -> None:
        self.logps, self.tokens = state["logps"], state["tokens"]

    def parameters(self) -> int:
        return 0


Reference = AdaptersOff | FrozenCopy | Precomputed


def build_reference(kind: str | None, model: torch.nn.Module) -> Reference | None:
    """`kind` is `reference_kind(objective, peft)`: adapters_off | copy | precomputed | None (none)."""
    if kind is None:
        return None
    if kind == "precomputed":
        return Precomputed()
    return AdaptersOff(model) if kind == "adapters_off" else FrozenCopy(model)
