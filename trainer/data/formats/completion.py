"""Raw text -> bos + text + eos, every token trained; long texts become several examples.

Why split rather than truncate: for pre-training-style data every token is signal, so a text longer
than data.sequence_len is cut into consecutive chunks of at most that length (bos only on the first,
eos only on the last) instead of being dropped or cut short; `stats.chunked` counts such texts.
"""

from __future__ import annotations

from typing import Any

from trainer.config.dataset import CompletionFormat
from trainer.data.encoded import EncodeOptions, EncodeStats, Example, admit
from trainer.data.formats.common import bos_ids, eos_id, text_field, where

NEEDS = "completion records need the text to train on"


def encode(
    records: list[dict[str, Any]],
    fmt: CompletionFormat,
    tokenizer: Any,
    opts: EncodeOptions,
    key: str,
    first_index: int = 0,
) -> tuple[list[Example], EncodeStats]:
    texts = [text_field(r, fmt.field, key, first_index + i, NEEDS) for i, r in enumerate(records)]
    stats = EncodeStats(read=len(records))
    keep = [i for i, t in enumerate(texts) if t.strip()]
    for _ in range(len(texts) - len(keep)):
        stats.drop("empty")
    kept_texts = [texts[i] for i in keep]
    token_ids = tokenizer(kept_texts, add_special_tokens=False, verbose=False)["input_ids"] if keep else []
    bos, eos = bos_ids(tokenizer), [eos_id(tokenizer)]
    size = opts.sequence_len
    out: list[Example] = []
    for i, toks in zip(keep, token_ids, strict=True):
        ids = bos + toks + eos
        if len(ids) > size:
            stats.chunked += 1
        name = where(key, first_index + i)
        for start in range(0, len(ids), size):
            chunk = ids[start : start + size]
            example = admit(chunk, chunk, opts, stats, name)
            if example is not None:
                out.append(example)
    return out, stats
