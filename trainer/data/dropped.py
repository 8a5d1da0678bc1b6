"""A dataset that loses most of its records is worth a loud warning, and past a floor, a refusal.

Why: 297 of 300 records dropped (a sequence_len too short for the data, or a format that does not
match) trained on 3 examples, reported only as a count in the summary. Above WARN_FRACTION the drop is
logged as a warning, shown on the terminal; above `data.max_dropped_fraction` (default 0.9; 1.0 never
refuses) the run stops before training, naming the dataset, the counts and the reasons. The check reads
the counts, so a cache hit is checked like a fresh build.
"""

from __future__ import annotations

from collections.abc import Iterator

from trainer.data.encoded import EncodeStats
from trainer.data.summary import DataSummary
from trainer.errors import UserError

WARN_FRACTION = 0.5


def _datasets(summary: DataSummary) -> Iterator[tuple[str, EncodeStats]]:
    for group, by_name in (("datasets", summary.train), ("validation", summary.val)):
        for name, stats in by_name.items():
            yield f"data.{group}.{name}", stats


def _counts(key: str, s: EncodeStats) -> str:
    return (
        f"{key}: {s.dropped_total:,} of {s.read:,} records dropped ({s.dropped_fraction:.0%}: "
        f"{s.describe_drops()}), {s.kept:,} examples kept"
    )


def check_drops(summary: DataSummary, max_fraction: float) -> list[str]:
    """Warnings for datasets that dropped more than half their records; UserError for the first that
    dropped more than `max_fraction`."""
    warnings = []
    for key, s in _datasets(summary):
        if s.dropped_fraction > max_fraction:
            raise UserError(
                f"{_counts(key, s)}; more than data.max_dropped_fraction={max_fraction}",
                hint=f"raise data.sequence_len, set data.too_long=truncate, check that {key}.format matches "
                "the records, or set data.max_dropped_fraction=1.0 to train on what is left",
            )
        if s.dropped_fraction > WARN_FRACTION:
            warnings.append(f"{_counts(key, s)}; check data.sequence_len and the format")
    return warnings
