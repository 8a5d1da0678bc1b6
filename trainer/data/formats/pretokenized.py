"""Token ids as given (+ labels, IGNORE = not trained): only checked, never re-tokenized.

Labels absent -> every token trained; data.train_on_inputs -> every token trained, as in all formats.

Why check at all: a length mismatch between ids and labels, or a non-integer, would otherwise surface
as a shape error deep in training; here it names the example.
"""

from __future__ import annotations

from typing import Any

from trainer.config.dataset import PretokenizedFormat
from trainer.data.encoded import IGNORE, EncodeOptions, EncodeStats, Example
from trainer.data.formats.common import FORMAT_HINT, admit_each, got, where
from trainer.errors import UserError


def _ints(value: Any, name: str, record: Any, key: str, index: int) -> list[int]:
    try:
        if isinstance(value, (str, bytes, dict)) or value is None:
            raise TypeError
        out = [int(v) for v in value]
        if any(v != w for v, w in zip(out, value, strict=True)):  # 1.5 -> 1 would hide a mistake
            raise TypeError
        return out
    except (TypeError, ValueError):
        raise UserError(
            f"{where(key, index)}: field {name!r} should be a list of integers ({got(record, name)})",
            hint=FORMAT_HINT,
        ) from None


def ids_and_labels(record: Any, fmt: PretokenizedFormat, key: str, index: int) -> tuple[list[int], list[int]]:
    ids = _ints(
        record.get(fmt.input_ids) if isinstance(record, dict) else None, fmt.input_ids, record, key, index
    )
    if fmt.labels is None or record.get(fmt.labels) is None:
        return ids, ids
    labels = _ints(record[fmt.labels], fmt.labels, record, key, index)
    if len(labels) != len(ids):
        raise UserError(
            f"{where(key, index)}: {len(ids)} {fmt.input_ids} but {len(labels)} {fmt.labels}; they must "
            "be the same length (-100 marks a token that is not trained)",
            hint=FORMAT_HINT,
        )
    return ids, labels


def encode(
    records: list[dict[str, Any]],
    fmt: PretokenizedFormat,
    tokenizer: Any,
    opts: EncodeOptions,
    key: str,
    first_index: int = 0,
) -> tuple[list[Example], EncodeStats]:
    pairs = (
        _in_vocab(ids_and_labels(r, fmt, key, first_index + i), len(tokenizer), fmt, key, first_index + i)
        for i, r in enumerate(records)
    )
    return admit_each(pairs, opts, key, first_index, len(records))


def _in_vocab(
    pair: tuple[list[int], list[int]], size: int, fmt: PretokenizedFormat, key: str, index: int
) -> tuple[list[int], list[int]]:
    """Ids outside the vocabulary would fail deep in the embedding lookup (or as a CUDA assert)."""
    bad = next((t for t in pair[0] if not 0 <= t < size), None)
    if bad is not None:
        raise UserError(
            f"{where(key, index)}: {fmt.input_ids} holds {bad}, outside the tokenizer's ids 0..{size - 1}",
            hint="tokenize with the model's tokenizer (labels, not input_ids, use -100 for untrained tokens)",
        )
    return pair


def prompt_ids(record: dict[str, Any], fmt: PretokenizedFormat) -> list[int]:
    """The ids before the first trained label."""
    ids, labels = ids_and_labels(record, fmt, "record", 0)
    return ids[: next((k for k, lab in enumerate(labels) if lab != IGNORE), len(ids))]
