"""Scoring a preference run (DPO, IPO, ORPO, SimPO, KTO) on its pairs as validation during training does.

The same step (trainer/objectives/step.py), the same batches and the same count-weighted means, so
`trainer evaluate` on a run reproduces its final `val/loss` and `val/rewards/*`. The reference is rebuilt
as training built it: the loaded adapter model with its adapters off, or the starting model (its folder,
or the seeded from-scratch build) for a copy or a precomputed table (whose values it computes again).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trainer.config import TrainConfig


@dataclass(frozen=True)
class PreferenceScores:
    values: dict[str, float]  # loss, rewards/chosen, ..., as training names them under val/
    examples: int  # pairs (KTO: examples) scored

    def metrics(self, split: str) -> dict[str, float]:
        prefix = "eval" if split == "validation" else "eval_train"
        out = {**self.values, "examples": float(self.examples)}
        return {f"{prefix}/{k}": v for k, v in out.items()}


def starting_model(cfg: TrainConfig, tokenizer: Any) -> Any:
    """The weights training started from (what a `copy` reference is), built as the module builds them."""
    from trainer.models.build import build_model, hf_config, seeded

    with seeded(cfg.run.seed, enabled=cfg.model.from_scratch):
        return build_model(cfg.model, hf_config(cfg.model, tokenizer))


def score_preferences(
    cfg: TrainConfig,
    model: Any,
    tokenizer: Any,
    examples: Sequence[dict[str, Any]],
    batch_size: int,
    numerics: Any,
) -> PreferenceScores:
    import torch

    from trainer.config.objective import reference_kind
    from trainer.data.collate import model_inputs, preference_collator
    from trainer.objectives.metrics import weighted_means
    from trainer.objectives.reference import AdaptersOff, FrozenCopy
    from trainer.objectives.step import PreferenceStep

    kind = reference_kind(cfg.objective, cfg.peft.method)
    reference: AdaptersOff | FrozenCopy | None = None
    if kind == "adapters_off":
        reference = AdaptersOff(model)
    elif kind in ("copy", "precomputed"):  # a precomputed table holds the starting model's log-probs
        reference = FrozenCopy(starting_model(cfg, tokenizer), copy=False)
        reference.place_like(model)
    step = PreferenceStep(cfg.objective, reference)
    pad = tokenizer.pad_token_id
    collate = preference_collator(cfg.data.kind, pad, cfg.data.sequence_len)

    def policy(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return model(**model_inputs(batch), use_cache=False).logits

    window = []
    with torch.no_grad(), numerics:
        for start in range(0, len(examples), batch_size):
            part = collate(list(examples[start : start + batch_size]))
            batch = {k: v.to(model.device) for k, v in part.items()}
            window.append(step(policy, batch)[1])
    values = {k: float(v) for k, v in weighted_means(window).items()}
    return PreferenceScores(values, len(examples))
