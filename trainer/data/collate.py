"""Batches: what a batch holds, and the collators that make one.

Every batch has `input_ids`, `labels` and `real_tokens` (the count of non-padding tokens, for
throughput), plus how attention is kept apart: an `attention_mask` for padded examples, or
`position_ids` that restart at each document for packed rows (and no mask, which is what makes
transformers keep packed documents apart; a mask beside them would undo the isolation). `model_inputs`
picks what the model takes. Which collator a loader uses is decided by `PreparedData.collator`.

Preference batches are padded batches whose rows come in two halves, so one forward pass scores both:
pairs give rows 0..P-1 chosen and P..2P-1 rejected (`pairs` = P); KTO examples give rows 0..B-1 the
examples and B..2B-1 their KL rows (`desirable` per example). Markers (encoded.py) never leave the
collator: labels hold token ids and IGNORE only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from trainer.data.encoded import DESIRABLE, IGNORE, split_pair, unmarked

Batch = dict[str, torch.Tensor]
MODEL_INPUTS = ("input_ids", "attention_mask", "position_ids")


def model_inputs(batch: Batch) -> Batch:
    """The batch's tensors that go into the model (not labels or counts)."""
    return {k: batch[k] for k in MODEL_INPUTS if k in batch}


def padded(examples: list[dict[str, Any]], pad_id: int) -> Batch:
    """Right-pads examples to the longest one; padding is masked out of attention and loss."""
    width = max(len(e["input_ids"]) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e["input_ids"])
        ids[row, :n] = torch.as_tensor(np.asarray(e["input_ids"]), dtype=torch.long)
        labels[row, :n] = torch.as_tensor(np.asarray(e["labels"]), dtype=torch.long)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels, "real_tokens": mask.sum()}


class Collator:
    """Right-pads a list of examples to the longest one; padding is masked out of attention and loss."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, examples: list[dict[str, Any]]) -> Batch:
        return padded(examples, self.pad_id)


class PairCollator:
    """Preference pairs -> [2P, W]: rows 0..P-1 the chosen sequences, P..2P-1 the rejected ones in the
    same order (row i and row P+i are one pair), padded as `Collator` pads; `pairs` = P."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, pairs: list[dict[str, Any]]) -> Batch:
        halves = [split_pair(p) for p in pairs]
        batch = padded([c for c, _ in halves] + [r for _, r in halves], self.pad_id)
        batch["pairs"] = torch.tensor(len(pairs))
        if "index" in pairs[0]:  # numbered items (datamodule.Indexed): pair i's number
            batch["index"] = torch.tensor([int(p["index"]) for p in pairs], dtype=torch.long)
        return batch


class KtoCollator:
    """KTO examples -> [2B, W]: rows 0..B-1 the examples, rows B..2B-1 their KL rows, and `desirable`
    [B] (bool).

    Why KL rows: KTO's reference point is the policy's divergence from the reference on completions
    that do not answer the prompt. As in TRL, KL row i is the prompt of example i followed by the
    completion of example (i-1) mod B (cut to sequence_len at the end), labels over that completion only.
    With B=1 a KL row is the example itself, which is why kto asks for micro_batch >= 2.
    """

    def __init__(self, pad_id: int, sequence_len: int) -> None:
        self.pad_id, self.sequence_len = pad_id, sequence_len

    def __call__(self, examples: list[dict[str, Any]]) -> Batch:
        rows = [
            {"input_ids": [int(t) for t in e["input_ids"]], "labels": unmarked(e["labels"])} for e in examples
        ]
        # Where each completion starts: its first trained token (position 0 held the marker).
        starts = [next((i for i, t in enumerate(r["labels"]) if t != IGNORE), len(r["labels"])) for r in rows]
        kl = []
        for i, (row, start) in enumerate(zip(rows, starts, strict=True)):
            other, other_start = rows[i - 1], starts[i - 1]
            ids = row["input_ids"][:start] + other["input_ids"][other_start:]
            labels = [IGNORE] * start + other["labels"][other_start:]
            kl.append({"input_ids": ids[: self.sequence_len], "labels": labels[: self.sequence_len]})
        batch = padded(rows + kl, self.pad_id)
        batch["desirable"] = torch.tensor(
            [int(e["labels"][0]) == DESIRABLE for e in examples], dtype=torch.bool
        )
        return batch


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


def preference_collator(kind: str, pad_id: int, sequence_len: int) -> PairCollator | KtoCollator:
    """The collator of preference data (`DataConfig.kind`): pairs, or KTO examples with their KL rows;
    training, validation and `trainer evaluate` all batch it this way."""
    return KtoCollator(pad_id, sequence_len) if kind == "kto" else PairCollator(pad_id)
