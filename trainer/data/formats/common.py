"""Helpers every format shares: how a bad record is named, and how a text field is read.

Errors name the dataset's config key and the example's index in the file (`data.datasets.alpaca:
example 12`), so a user can find the record; `first_index` shifts the index when a dataset is encoded
in chunks by several processes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from trainer.data.encoded import EncodeOptions, EncodeStats, Example, admit
from trainer.data.sources import json_kind
from trainer.errors import UserError

FORMAT_HINT = "fix the record, or set the dataset's format.type (and its field names) to match the file"


def where(key: str, index: int) -> str:
    return f"{key}: example {index}"


def got(record: Any, name: str) -> str:
    """`missing`, or the type found instead (`a list`), for an error message."""
    if not isinstance(record, dict):
        return f"the record is {json_kind(record)}, not an object"
    return "missing" if name not in record else json_kind(record[name])


def require_record(record: Any, key: str, index: int) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise UserError(
            f"{where(key, index)} is {json_kind(record)}, not an object with named fields",
            hint=FORMAT_HINT,
        )
    return record


def text_field(record: dict[str, Any], name: str, key: str, index: int, needs: str) -> str:
    """A required string field; `needs` says what the format expects, for the error."""
    value = record.get(name) if isinstance(record, dict) else None
    if not isinstance(value, str):
        raise UserError(
            f"{where(key, index)} has no text field {name!r} ({got(record, name)}); {needs}",
            hint=FORMAT_HINT,
        )
    return value


def optional_text(record: dict[str, Any], name: str, key: str, index: int) -> str:
    """An optional string field: missing or null reads as empty; any other type is a mistake."""
    value = record.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise UserError(
            f"{where(key, index)}: field {name!r} is {json_kind(value)}, expected text or null",
            hint=FORMAT_HINT,
        )
    return value


def bos_ids(tokenizer: Any) -> list[int]:
    """[bos] when the tokenizer has one, else []: raw-text formats start documents with it."""
    bos = getattr(tokenizer, "bos_token_id", None)
    return [bos] if bos is not None else []


def eos_id(tokenizer: Any) -> int:
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is None:
        raise UserError(
            "the tokenizer has no eos token, so the model could not learn where a response ends",
            hint="use a tokenizer with an eos token (model.tokenizer=...)",
        )
    return eos


def admit_each(
    pairs: Iterable[tuple[list[int], list[int]]], opts: EncodeOptions, key: str, first_index: int, read: int
) -> tuple[list[Example], EncodeStats]:
    """(ids, labels) per record through `admit`, in order; train_on_inputs trains every token."""
    stats = EncodeStats(read=read)
    out: list[Example] = []
    for i, (ids, labels) in enumerate(pairs):
        example = admit(
            ids, ids if opts.train_on_inputs else labels, opts, stats, where(key, first_index + i)
        )
        if example is not None:
            out.append(example)
    return out, stats
