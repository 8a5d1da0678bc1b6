"""What every format produces: token ids with labels, the counts of what was kept and dropped, and a
compact array-backed set of examples that the cache stores and the loaders index.

One policy function (`admit`) decides the fate of each encoded example (too long: drop, truncate or
fail; nothing left to train: drop), so every format reports losses the same way and none is silent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainer.errors import UserError

IGNORE = -100
Example = dict[str, list[int]]  # {"input_ids": [...], "labels": [...]}, same length

# Preference data lives in the same one-example-per-row set as supervised data: a pair is its chosen
# sequence followed by its rejected one, a KTO example is one sequence. What tells the halves apart and
# carries a KTO verdict is a marker in `labels`, at a position that is never a target (a sequence's first
# token), so split, mix, duplicates and the cache work unchanged and no second array is stored.
# Collators turn markers back into IGNORE before anything reaches a loss.
PAIR_START = -101  # the label at the first token of a pair's rejected half
DESIRABLE = -102  # the label at position 0 of a desirable KTO example
UNDESIRABLE = -103  # ... of an undesirable one
MARKERS = (PAIR_START, DESIRABLE, UNDESIRABLE)

# Why an example can be left out; the run reports a count for each.
DROP_REASONS = {
    "too_long": "longer than data.sequence_len",
    "no_trained_tokens": "no token left to train on",
    "empty": "empty text",
    "identical": "chosen and rejected identical",
}


COUNTS = (
    "read",
    "kept",
    "truncated",
    "chunked",
    "tokens",
    "trained_tokens",
    "duplicates",
    "kept_in_training",
    "also_in_training",
)


@dataclass
class EncodeStats:
    read: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    truncated: int = 0
    chunked: int = 0  # long completion texts split into several examples (each chunk is kept)
    tokens: int = 0
    trained_tokens: int = 0
    duplicates: int = 0  # kept examples identical (ids and labels) to an earlier one of the same dataset
    kept_in_training: int = 0  # training datasets: held-out picks that duplicate a training example
    also_in_training: int = 0  # validation datasets: examples that also occur in the training data

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    @property
    def dropped_fraction(self) -> float:
        """Dropped examples per record read (0 when nothing was read)."""
        return self.dropped_total / self.read if self.read else 0.0

    def merge(self, other: EncodeStats) -> EncodeStats:
        out = EncodeStats(**asdict(self))
        out.dropped = dict(self.dropped)
        for reason, n in other.dropped.items():
            out.dropped[reason] = out.dropped.get(reason, 0) + n
        for name in COUNTS:
            setattr(out, name, getattr(self, name) + getattr(other, name))
        return out

    def describe_drops(self) -> str:
        """`12 longer than data.sequence_len, 1 no token left to train on`, or `none`."""
        parts = [f"{n:,} {DROP_REASONS.get(r, r)}" for r, n in sorted(self.dropped.items()) if n]
        return ", ".join(parts) or "none"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncodeStats:
        return cls(**data)


@dataclass(frozen=True)
class EncodeOptions:
    """The data settings every format needs; `chat_template` is the Jinja text already resolved."""

    sequence_len: int
    too_long: str  # drop | truncate | error
    train_on_inputs: bool
    chat_template: str | None = None
    # The most characters one token stands for (see formats/oversize.py); 0 = unknown, so records are
    # not measured before tokenizing.
    longest_token_chars: int = 0


def admit(
    ids: list[int], labels: list[int], opts: EncodeOptions, stats: EncodeStats, where: str
) -> Example | None:
    """Apply the length policy and the nothing-to-train rule; count the outcome in `stats`.

    `where` names the example for an error (`data.datasets.alpaca: example 12`).
    """
    if len(ids) > opts.sequence_len:
        if opts.too_long == "error":
            raise UserError(
                f"{where} has {len(ids)} tokens, more than data.sequence_len={opts.sequence_len}",
                hint="raise data.sequence_len, or set data.too_long=drop|truncate",
            )
        if opts.too_long == "drop":
            stats.drop("too_long")
            return None
        ids, labels = ids[: opts.sequence_len], labels[: opts.sequence_len]
        stats.truncated += 1
    trained = sum(1 for t in labels[1:] if t != IGNORE)  # the first token is never a target
    if trained == 0:
        stats.drop("no_trained_tokens")
        return None
    stats.kept += 1
    stats.tokens += len(ids)
    stats.trained_tokens += trained
    return {"input_ids": list(ids), "labels": list(labels)}


def unmarked(labels: Sequence[int]) -> list[int]:
    """Labels with markers made IGNORE: what a loss or a label view sees."""
    return [IGNORE if int(t) in MARKERS else int(t) for t in labels]


def split_pair(example: dict[str, Any]) -> tuple[Example, Example]:
    """A pair example -> (chosen, rejected), each with its markers made IGNORE."""
    labels = [int(t) for t in example["labels"]]
    ids = [int(t) for t in example["input_ids"]]
    cut = labels.index(PAIR_START)
    return (
        {"input_ids": ids[:cut], "labels": unmarked(labels[:cut])},
        {"input_ids": ids[cut:], "labels": unmarked(labels[cut:])},
    )


def trained_count(labels: Sequence[int]) -> int:
    """Tokens that are targets: not IGNORE, not a marker, and not the first (never a target)."""
    return sum(1 for t in labels[1:] if t != IGNORE and t not in MARKERS)


class TokenizedSet(Sequence):
    """Examples as two flat int32 arrays and offsets: small in memory, saved and memory-mapped as is."""

    def __init__(self, input_ids: np.ndarray, labels: np.ndarray, offsets: np.ndarray) -> None:
        self.input_ids, self.labels, self.offsets = input_ids, labels, offsets

    @classmethod
    def from_examples(cls, examples: Iterable[Example]) -> TokenizedSet:
        ids: list[int] = []
        labels: list[int] = []
        offsets = [0]
        for e in examples:
            ids.extend(e["input_ids"])
            labels.extend(e["labels"])
            offsets.append(len(ids))
        return cls(np.asarray(ids, np.int32), np.asarray(labels, np.int32), np.asarray(offsets, np.int64))

    @classmethod
    def empty(cls) -> TokenizedSet:
        return cls.from_examples([])

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:  # type: ignore[override]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        a, b = self.offsets[i], self.offsets[i + 1]
        return {"input_ids": self.input_ids[a:b], "labels": self.labels[a:b]}

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def select(self, indices: Sequence[int]) -> TokenizedSet:
        """A new set with these examples, in this order (repeats allowed); vectorized gather."""
        idx = np.asarray(indices, dtype=np.int64)
        lens = self.lengths[idx]
        offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        positions = np.repeat(self.offsets[:-1][idx] - offsets[:-1], lens) + np.arange(offsets[-1])
        return TokenizedSet(self.input_ids[positions], self.labels[positions], offsets)

    @staticmethod
    def concat(parts: Sequence[TokenizedSet]) -> TokenizedSet:
        if not parts:
            return TokenizedSet.empty()
        shifts = np.cumsum([0] + [len(p.input_ids) for p in parts[:-1]])
        offsets = [parts[0].offsets[:1]] + [p.offsets[1:] + s for p, s in zip(parts, shifts, strict=True)]
        return TokenizedSet(
            np.concatenate([p.input_ids for p in parts]),
            np.concatenate([p.labels for p in parts]),
            np.concatenate(offsets),
        )

    def save(self, folder: Path, name: str) -> None:
        for part in ("input_ids", "labels", "offsets"):
            np.save(folder / f"{name}.{part}.npy", getattr(self, part))

    @classmethod
    def load(cls, folder: Path, name: str) -> TokenizedSet:
        """Memory-mapped: a cache hit costs the page-ins of what is read, not a parse."""
        parts = ("input_ids", "labels", "offsets")
        return cls(*(np.load(folder / f"{name}.{part}.npy", mmap_mode="r") for part in parts))
