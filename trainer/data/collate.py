"""Batches: what a batch holds, and the two collators that make one.

Every batch has `input_ids`, `labels` and `real_tokens` (the count of non-padding tokens, for
throughput), plus how attention is kept apart: an `attention_mask` for padded examples, or
`position_ids` that restart at each document for packed rows (and no mask, which is what makes
transformers keep packed documents apart; a mask beside them would undo the isolation). `model_inputs`
picks what the model takes. Which collator a loader uses is decided by `PreparedData.collator`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from trainer.data.encoded import IGNORE

Batch = dict[str, torch.Tensor]
MODEL_INPUTS = ("input_ids", "attention_mask", "position_ids")


def model_inputs(batch: Batch) -> Batch:
    """The batch's tensors that go into the model (not labels or counts)."""
    return {k: batch[k] for k in MODEL_INPUTS if k in batch}


class Collator:
    """Right-pads a list of examples to the longest one; padding is masked out of attention and loss."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, examples: list[dict[str, Any]]) -> Batch:
        width = max(len(e["input_ids"]) for e in examples)
        ids = torch.full((len(examples), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(examples), width), dtype=torch.long)
        for row, e in enumerate(examples):
            n = len(e["input_ids"])
            ids[row, :n] = torch.as_tensor(e["input_ids"], dtype=torch.long)
            labels[row, :n] = torch.as_tensor(e["labels"], dtype=torch.long)
            mask[row, :n] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels, "real_tokens": mask.sum()}


class PackedCollator:
    """Right-pads packed rows to the longest row in the batch; there is no attention mask.

    The padding is a pseudo-document of its own (positions 0..k-1, labels IGNORE): the position restart
    isolates it like any other document, so it neither sees nor is seen by real tokens, and it adds
    nothing to the loss.
    """

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, rows: list[dict[str, np.ndarray]]) -> Batch:
        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        positions = torch.arange(width, dtype=torch.long).repeat(len(rows), 1)
        for row, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[row, :n] = torch.as_tensor(np.asarray(r["input_ids"]), dtype=torch.long)
            labels[row, :n] = torch.as_tensor(np.asarray(r["labels"]), dtype=torch.long)
            positions[row, :n] = torch.as_tensor(np.asarray(r["position_ids"]), dtype=torch.long)
            positions[row, n:] -= n  # the pad pseudo-document counts from 0
        real = torch.tensor(sum(len(r["input_ids"]) for r in rows))
        return {"input_ids": ids, "labels": labels, "position_ids": positions, "real_tokens": real}
