"""Scoring a model on the run's data exactly as validation during training does.

The data is prepared by the same code as for training (same split, seed and cache), batches are padded
by the training `Collator`, and the numbers are the training ones (trainer/models/scoring.py): the
token-weighted loss and teacher-forced exact match. So a run's final `val/loss` is reproduced exactly.
Perplexity is exp(loss). Exact match is left out for raw-text (completion) data, which has no single
right answer.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trainer.config import TrainConfig
from trainer.config.dataset import CompletionFormat
from trainer.errors import UserError


@dataclass(frozen=True)
class Scores:
    loss: float
    exact_match: float | None
    examples: int
    tokens: int

    @property
    def perplexity(self) -> float:
        return math.exp(self.loss) if self.loss < 700 else math.inf

    def metrics(self, split: str) -> dict[str, float]:
        prefix = "eval" if split == "validation" else "eval_train"
        out = {"loss": self.loss, "perplexity": self.perplexity, "examples": float(self.examples)}
        if self.exact_match is not None:
            out["exact_match"] = self.exact_match
        return {f"{prefix}/{k}": v for k, v in out.items()}


def examples_for(cfg: TrainConfig, tokenizer: Any) -> Sequence[dict[str, Any]]:
    """The split's examples, prepared exactly as for training (packed rows are scored unpacked)."""
    from trainer.data.prepare import prepare_data

    data = prepare_data(cfg.data, tokenizer, cfg.data.seed_or(cfg.run.seed))
    if cfg.infer.split == "train":
        chosen = data.examples
    elif len(data.val):
        chosen = data.val
    else:
        raise UserError(
            "infer.split=validation: the data has no validation set",
            hint="use infer.split=train, or give the data one (data.validation, data.val_fraction or "
            "data.val_count) with a model folder as infer.source",
        )
    n = min(len(chosen), cfg.infer.max_examples or len(chosen))
    return [chosen[i] for i in range(n)]


def has_answers(cfg: TrainConfig) -> bool:
    """Exact match means something unless every scored dataset is raw text."""
    d = cfg.data
    scored = d.datasets if cfg.infer.split == "train" or not d.validation else d.validation
    return not all(isinstance(ds.format, CompletionFormat) for ds in scored.values())


def numerics(cfg: TrainConfig, model: Any) -> Any:
    """Training's numerics on a GPU (autocast for *-mixed, bf16 weights for bf16-true); fp32 on a CPU."""
    import torch

    precision = cfg.precision
    if model.device.type != "cuda" or precision == "32":
        return contextlib.nullcontext()
    if precision == "bf16-true":
        model.to(torch.bfloat16)
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision.startswith("bf16") else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def score(
    model: Any, examples: Sequence[dict[str, Any]], pad_id: int, batch_size: int, numerics: Any
) -> Scores:
    """Sum of token losses over all batches / trained tokens, as the module's weighted MeanMetric does."""
    import torch

    from trainer.data.collate import Collator, model_inputs
    from trainer.models.scoring import exact_matches, token_loss

    collate = Collator(pad_id)
    total, tokens, matches = 0.0, 0, []
    with torch.no_grad(), numerics:
        for start in range(0, len(examples), batch_size):
            batch = {
                k: v.to(model.device) for k, v in collate(list(examples[start : start + batch_size])).items()
            }
            logits = model(**model_inputs(batch), use_cache=False).logits
            loss_sum, count = token_loss(logits, batch["labels"])
            total += float(loss_sum)
            tokens += int(count)
            matches.append(exact_matches(logits, batch["labels"]).cpu())
    if tokens == 0:
        raise UserError("no trained tokens in the scored examples", hint="check the data's labels")
    hits = torch.cat(matches)
    return Scores(total / tokens, float(hits.mean()) if len(hits) else None, len(examples), tokens)
