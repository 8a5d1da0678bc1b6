"""The numbers a causal LM is scored by, on logits and labels: token loss and teacher-forced exact match.

Training, validation and `trainer evaluate` all use these two functions, so a run's final `val/loss` is
reproduced exactly by evaluating its folder.
"""

from __future__ import annotations

import torch

from trainer.data.encoded import IGNORE


def token_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of next-token cross entropy over trained positions, and their count."""
    shift_logits = logits[:, :-1].float().reshape(-1, logits.size(-1))
    shift_labels = labels[:, 1:].reshape(-1)
    total = torch.nn.functional.cross_entropy(
        shift_logits, shift_labels, ignore_index=IGNORE, reduction="sum"
    )
    return total, (shift_labels != IGNORE).sum()


def exact_matches(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per example: 1.0 when every trained position's argmax equals its label (shifted by one). That is
    exactly whether greedy decoding would answer the example word for word, without a generation loop."""
    pred = logits[:, :-1].argmax(-1)
    target = labels[:, 1:]
    trained = target != IGNORE
    wrong = (pred != target) & trained
    return (~wrong.any(dim=1)).float()[trained.any(dim=1)]
