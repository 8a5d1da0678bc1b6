"""Segments of text, each flagged trained or not -> ids whose labels follow the flags.

Why each segment is tokenized on its own: the boundary between trained and untrained text is then an
exact token boundary, whatever the tokenizer would merge across it; the user controls every character
(no template, no eos added), with bos first when the tokenizer has one (never trained).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from trainer.config.dataset import InputOutputFormat
from trainer.data.encoded import IGNORE, EncodeOptions, EncodeStats, Example
from trainer.data.formats.common import FORMAT_HINT, admit_each, bos_ids, got, where
from trainer.errors import UserError


def segments(record: Any, fmt: InputOutputFormat, key: str, index: int) -> list[tuple[str, bool]]:
    """(text, trained) pairs, checked."""
    raw = record.get(fmt.field) if isinstance(record, dict) else None
    if not isinstance(raw, list) or not raw:
        what = "empty" if isinstance(raw, list) else got(record, fmt.field)
        raise UserError(
            f"{where(key, index)} has no segment list in field {fmt.field!r} ({what})", hint=FORMAT_HINT
        )
    out = []
    for j, seg in enumerate(raw):
        text = seg.get(fmt.text) if isinstance(seg, dict) else None
        flag = seg.get(fmt.label) if isinstance(seg, dict) else None
        if not isinstance(text, str) or not isinstance(flag, bool):
            raise UserError(
                f"{where(key, index)}, segment {j}: expected {{{fmt.text!r}: text, "
                f"{fmt.label!r}: true|false}}, got {str(seg)[:120]}",
                hint=FORMAT_HINT,
            )
        out.append((text, flag))
    return out


def encode(
    records: list[dict[str, Any]],
    fmt: InputOutputFormat,
    tokenizer: Any,
    opts: EncodeOptions,
    key: str,
    first_index: int = 0,
) -> tuple[list[Example], EncodeStats]:
    parsed = [segments(r, fmt, key, first_index + i) for i, r in enumerate(records)]
    flat = [text for segs in parsed for text, _ in segs]
    flat_ids = iter(tokenizer(flat, add_special_tokens=False, verbose=False)["input_ids"] if flat else [])
    bos = bos_ids(tokenizer)

    def pairs() -> Iterator[tuple[list[int], list[int]]]:
        for segs in parsed:
            ids, labels = list(bos), [IGNORE] * len(bos)
            for _, trained in segs:
                seg_ids = next(flat_ids)
                ids += seg_ids
                labels += seg_ids if trained else [IGNORE] * len(seg_ids)
            yield ids, labels

    return admit_each(pairs(), opts, key, first_index, len(records))


def prompt_segments(record: dict[str, Any], fmt: InputOutputFormat) -> list[str]:
    """The segments before the first trained one: what the model is given to continue."""
    prompt = []
    for text, trained in segments(record, fmt, "record", 0):
        if trained:
            break
        prompt.append(text)
    return prompt


def generation_prompt_ids(record: dict[str, Any], fmt: InputOutputFormat, tokenizer: Any) -> list[int]:
    """bos + each prompt segment tokenized on its own, as in training."""
    texts = prompt_segments(record, fmt)
    parts = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"] if texts else []
    return bos_ids(tokenizer) + [t for part in parts for t in part]
