"""What data preparation reports: per dataset how many examples were read, kept and dropped and why,
the mix, packing and the cache; as rows for the summaries and as metrics for the tracker. Nothing is
lost silently."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trainer.data.encoded import EncodeStats


def human(n: float) -> str:
    """186790 -> '186.79k' (decimal units, as token and parameter counts are quoted)."""
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n:.0f}"


@dataclass
class DataSummary:
    train: dict[str, EncodeStats]  # per training dataset: read, kept, dropped by reason
    val: dict[str, EncodeStats]  # per validation dataset (empty when held out from training)
    train_examples: int  # after hold-out and mixing
    val_examples: int
    mixed: dict[str, int] = field(default_factory=dict)  # training examples per dataset after the mix
    cache: str = "off"  # "hit <folder>", "built <folder>", or "off"
    key: str | None = None  # the cache key (config + content of every file): what a resume compares
    seconds: float = 0.0
    sequence_len: int = 0
    packed_rows: int | None = None
    packing_efficiency: float | None = None
    overfit: int | None = None  # data.overfit_batches: the training items kept, validated on themselves
    unit: str = "examples"  # what one item is called: "pairs" for preference data

    @property
    def train_total(self) -> EncodeStats:
        total = EncodeStats()
        for s in self.train.values():
            total = total.merge(s)
        return total

    def rows(self) -> list[tuple[str, str]]:
        """(label, text) rows for a one-screen summary."""
        rows = []
        for group, by_name in (("train", self.train), ("val", self.val)):
            for name, s in by_name.items():
                extra = f", {s.truncated:,} truncated" if s.truncated else ""
                extra += f", {s.chunked:,} split into chunks" if s.chunked else ""
                rows.append(
                    (
                        "data" if not rows else "",
                        f"{group} {name}: {s.kept:,} kept of {s.read:,} read ({human(s.tokens)} tokens); "
                        f"dropped: {s.describe_drops()}{extra}",
                    )
                )
        rows += [("", line) for line in self.duplicate_lines()]
        returned = self.train_total.kept_in_training
        note = f"; {returned:,} duplicates of training examples kept in training" if returned else ""
        held = (
            f" ({self.val_examples:,} held out for validation{note})"
            if self.val_examples and not self.val
            else ""
        )
        mix = ", ".join(f"{n} {k:,}" for n, k in self.mixed.items()) if len(self.mixed) > 1 else ""
        rows.append(
            ("", f"training set {self.train_examples:,} {self.unit}{held}" + (f": {mix}" if mix else ""))
        )
        rows += [("warning", line) for line in self.warnings()]
        if self.packed_rows is not None:
            rows.append(
                (
                    "packing",
                    f"{self.packed_rows:,} rows of {self.sequence_len} tokens, "
                    f"{self.packing_efficiency:.2%} of token slots are real tokens",
                )
            )
        if self.overfit is not None:
            rows.append(
                ("overfit", f"training on the first {self.overfit:,} items only, validated on themselves")
            )
        rows.append(("cache", f"{self.cache} ({self.seconds:.2f} s)"))
        return rows

    def _by_key(self) -> list[tuple[str, str, EncodeStats]]:
        """(metric group, config key, counts) of every dataset, training first."""
        return [
            (group, f"data.{section}.{name}", s)
            for group, section, by_name in (
                ("train", "datasets", self.train),
                ("val", "validation", self.val),
            )
            for name, s in by_name.items()
        ]

    def duplicate_lines(self) -> list[str]:
        """`duplicates: 14 exact duplicate examples in data.datasets.alpaca`, per dataset that has any."""
        return [
            f"duplicates: {s.duplicates:,} exact duplicate {self.unit} in {key}"
            for _, key, s in self._by_key()
            if s.duplicates
        ]

    def warnings(self) -> list[str]:
        """Validation examples that also occur in the training data: kept, but said out loud."""
        return [
            f"{s.also_in_training:,} of the {s.kept:,} {self.unit} in {key} also occur in the training data "
            "(exact duplicates), so validation partly measures memorization"
            for group, key, s in self._by_key()
            if group == "val" and s.also_in_training
        ]

    def metrics(self) -> dict[str, float]:
        """The counts as tracker params: examples read, kept and dropped by reason, packing."""
        out: dict[str, float] = {
            "data/train_examples": self.train_examples,
            "data/val_examples": self.val_examples,
            "data/duplicates": sum(s.duplicates for _, _, s in self._by_key()),
            "data/val_kept_in_training": self.train_total.kept_in_training,
            "data/val_also_in_training": sum(s.also_in_training for s in self.val.values()),
        }
        for group, by_name in (("train", self.train), ("val", self.val)):
            for name, s in by_name.items():
                out[f"data/{group}/{name}/read"] = s.read
                out[f"data/{group}/{name}/kept"] = s.kept
                out[f"data/{group}/{name}/tokens"] = s.tokens
                out[f"data/{group}/{name}/duplicates"] = s.duplicates
                for reason, n in s.dropped.items():
                    out[f"data/{group}/{name}/dropped_{reason}"] = n
        if self.packing_efficiency is not None:
            out["data/packing_efficiency"] = self.packing_efficiency
            out["data/packed_rows"] = self.packed_rows
        return out

    def inputs(self, paths: dict[str, str]) -> list[dict[str, Any]]:
        """Each dataset as a tracker input: its name, where it was read, the data key as digest (the
        content of every file and the options that encode them), its context and counts.
        `paths` is `DataConfig.paths()` (config key -> path)."""
        rows = []
        for group, context, by_name in (("datasets", "train", self.train), ("validation", "eval", self.val)):
            for name, s in by_name.items():
                rows.append(
                    {
                        "name": name if context == "train" else f"{name}/validation",  # one input each
                        "source": paths.get(f"data.{group}.{name}.path", ""),
                        "digest": (self.key or "")[:16],
                        "context": context,
                        "profile": {"num_rows": s.kept, "read": s.read, "tokens": s.tokens},
                    }
                )
        return rows
