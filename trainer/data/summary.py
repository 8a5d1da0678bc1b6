"""What data preparation reports: per dataset how many examples were read, kept and dropped and why,
the mix, packing and the cache; as rows for the summaries and as metrics for the tracker. Nothing is
lost silently."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    seconds: float = 0.0
    sequence_len: int = 0
    packed_rows: int | None = None
    packing_efficiency: float | None = None
    overfit: int | None = None  # data.overfit_batches: the training items kept, validated on themselves

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
        held = (
            f" ({self.val_examples:,} held out for validation)" if self.val_examples and not self.val else ""
        )
        mix = ", ".join(f"{n} {k:,}" for n, k in self.mixed.items()) if len(self.mixed) > 1 else ""
        rows.append(
            ("", f"training set {self.train_examples:,} examples{held}" + (f": {mix}" if mix else ""))
        )
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

    def metrics(self) -> dict[str, float]:
        """The counts as step-0 tracker metrics: examples read, kept and dropped by reason, packing."""
        out: dict[str, float] = {
            "data/train_examples": self.train_examples,
            "data/val_examples": self.val_examples,
        }
        for group, by_name in (("train", self.train), ("val", self.val)):
            for name, s in by_name.items():
                out[f"data/{group}/{name}/read"] = s.read
                out[f"data/{group}/{name}/kept"] = s.kept
                out[f"data/{group}/{name}/tokens"] = s.tokens
                for reason, n in s.dropped.items():
                    out[f"data/{group}/{name}/dropped_{reason}"] = n
        if self.packing_efficiency is not None:
            out["data/packing_efficiency"] = self.packing_efficiency
            out["data/packed_rows"] = self.packed_rows
        return out
