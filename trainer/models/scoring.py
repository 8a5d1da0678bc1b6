"""The numbers a causal LM is scored by, on logits and labels: token loss and teacher-forced exact match.

Training, validation and `trainer evaluate` all use these functions, so a run's final `val/loss` is
reproduced exactly by evaluating its folder. `chunked_token_loss` is `token_loss` computed from the
decoder's hidden states a slice of tokens at a time (model.loss_chunk_tokens), for training.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.checkpoint import checkpoint

from trainer.data.encoded import IGNORE


def token_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of next-token cross entropy over trained positions, and their count."""
    shift_logits = logits[:, :-1].float().reshape(-1, logits.size(-1))
    shift_labels = labels[:, 1:].reshape(-1)
    total = torch.nn.functional.cross_entropy(
        shift_logits, shift_labels, ignore_index=IGNORE, reduction="sum"
    )
    return total, (shift_labels != IGNORE).sum()


def chunked_token_loss(
    hidden: torch.Tensor, head: Callable[[torch.Tensor], torch.Tensor], labels: torch.Tensor, chunk: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """`token_loss(head(hidden), labels)` without the tokens x vocabulary logits at once.

    Only trained positions go through the output layer `head` (prompt and padding tokens need no
    logits), `chunk` rows at a time; each slice's logits are dropped after its loss and recomputed in
    backward (non-reentrant checkpoint), so the peak is one slice's logits and their gradient. The
    price is the output layer's forward twice."""
    targets = labels[:, 1:].reshape(-1)
    trained = targets != IGNORE
    rows = hidden[:, :-1].reshape(-1, hidden.size(-1))[trained]
    targets = targets[trained]

    def piece(h: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(head(h).float(), t, reduction="sum")

    # Starts from the output layer over no rows: zero, but in the graph, so a micro batch without trained
    # tokens still backpropagates (and DDP still sees the output layer's gradient).
    total = head(rows[:0]).float().sum()
    for start in range(0, rows.size(0), chunk):
        end = start + chunk
        total = total + checkpoint(piece, rows[start:end], targets[start:end], use_reentrant=False)
    return total, trained.sum()


def exact_matches(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per example: 1.0 when every trained position's argmax equals its label (shifted by one). That is
    exactly whether greedy decoding would answer the example word for word, without a generation loop."""
    pred = logits[:, :-1].argmax(-1)
    target = labels[:, 1:]
    trained = target != IGNORE
    wrong = (pred != target) & trained
    return (~wrong.any(dim=1)).float()[trained.any(dim=1)]
