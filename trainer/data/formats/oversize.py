"""Records far beyond data.sequence_len, found by their characters before anything is tokenized.

Why: tokenizing costs about 250 MB of memory per MB of text, so one 50 MB record (a dump pasted into
an `output` field) took 9.7 GB and a quarter of an hour before `too_long` dropped it. A token stands for
at most `longest_token_chars` characters, so text of more than `sequence_len * longest_token_chars`
characters has more than `sequence_len` tokens whatever the template adds: with `too_long=drop` such a
record is dropped (counted `too_long`) untokenized, with `error` it is named at once, and with
`truncate` each of its text fields is cut to `(sequence_len + 64) * longest_token_chars` characters,
still more than the first `sequence_len` tokens cover (the 64 spare tokens keep merges at the cut away
from the kept part). Records under the bound are not touched, so normal data encodes exactly as before.

Only text the format renders verbatim is counted, stripped (chat templates may trim contents): alpaca
fields, chat message contents, input_output segments. Completion text is split into chunks rather than
dropped, and pretokenized records are not tokenized, so neither is measured. A record this module
cannot read is left to the format, which names what is wrong with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trainer.config.dataset import AlpacaFormat, ChatFormat, Format, InputOutputFormat
from trainer.data.encoded import EncodeOptions, EncodeStats, Example
from trainer.data.formats.common import where
from trainer.errors import UserError

SPARE_TOKENS = 64  # text kept beyond sequence_len tokens when a huge record is truncated
Encode = Callable[[list[dict[str, Any]], int], tuple[list[Example], EncodeStats]]


def longest_token_chars(tokenizer: Any) -> int:
    """The most characters one token decodes to, special tokens left out, plus one: a decoder may drop
    the space a sequence's first token starts with (SentencePiece). Byte-level pieces count as decoded
    (a partial UTF-8 character decodes to one replacement character, more than it stands for)."""
    special = set(getattr(tokenizer, "all_special_ids", ()))
    ids = [[i] for i in range(len(tokenizer)) if i not in special]
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:  # one call into Rust: milliseconds for a 128k vocabulary
        texts = backend.decode_batch(ids, skip_special_tokens=True)
    else:
        texts = tokenizer.batch_decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    return max([len(t) for t in texts], default=0) + 1


def _text(value: Any) -> str:
    """A content value as text: a string, or a list of text parts joined; anything else counts nothing."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(p["text"] for p in value if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _alpaca_fields(fmt: AlpacaFormat) -> tuple[str, ...]:
    return (fmt.instruction, fmt.input, fmt.output, fmt.system)


def _chat_messages(record: dict[str, Any], fmt: ChatFormat) -> list[dict[str, Any]]:
    messages = record.get(fmt.field)
    return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []


def _chat_key(message: dict[str, Any], fmt: ChatFormat) -> str | None:
    """Where a message's rendered text is: OpenAI `content`, ShareGPT `value` (a tool call's JSON is
    re-serialized by the template, so it is not counted)."""
    if "from" in message:
        return "value" if fmt.role_map.get(message["from"]) != "tool_call" else None
    return "content"


def _segments(record: dict[str, Any], fmt: InputOutputFormat) -> list[dict[str, Any]]:
    segs = record.get(fmt.field)
    return [s for s in segs if isinstance(s, dict)] if isinstance(segs, list) else []


def text_chars(record: Any, fmt: Format) -> int:
    """Characters of the record's rendered text fields, stripped; 0 for formats that are not measured."""
    if not isinstance(record, dict):
        return 0
    if isinstance(fmt, AlpacaFormat):
        values = [record.get(name) for name in _alpaca_fields(fmt)]
    elif isinstance(fmt, ChatFormat):
        messages = _chat_messages(record, fmt)
        values = [m.get(k) for m in messages if (k := _chat_key(m, fmt))]
    elif isinstance(fmt, InputOutputFormat):
        values = [s.get(fmt.text) for s in _segments(record, fmt)]
    else:
        return 0
    return sum(len(_text(v).strip()) for v in values)


def _cut_value(value: Any, limit: int) -> Any:
    if isinstance(value, str):
        return value[:limit]
    if isinstance(value, list):
        return [{**p, "text": p["text"][:limit]} if isinstance(p, dict) and "text" in p else p for p in value]
    return value


def cut(record: dict[str, Any], fmt: Format, limit: int) -> dict[str, Any]:
    """A copy of the record with each measured text field cut to at most `limit` characters."""
    out = dict(record)
    if isinstance(fmt, AlpacaFormat):
        for name in _alpaca_fields(fmt):
            if name in out:
                out[name] = _cut_value(out[name], limit)
    elif isinstance(fmt, ChatFormat):
        out[fmt.field] = [
            {**m, k: _cut_value(m.get(k), limit)} if (k := _chat_key(m, fmt)) and k in m else m
            for m in record[fmt.field]
        ]
    elif isinstance(fmt, InputOutputFormat):
        out[fmt.field] = [
            {**s, fmt.text: _cut_value(s[fmt.text], limit)} if isinstance(s, dict) and fmt.text in s else s
            for s in record[fmt.field]
        ]
    return out


def screen(
    records: list[dict[str, Any]],
    fmt: Format,
    opts: EncodeOptions,
    key: str,
    first_index: int,
    encode: Encode,
) -> tuple[list[Example], EncodeStats]:
    """`encode(records, first_index)`, with records that cannot fit dropped, refused or cut first."""
    per_token = opts.longest_token_chars
    bound = opts.sequence_len * per_token
    huge = [i for i, r in enumerate(records) if per_token and text_chars(r, fmt) > bound]
    if not huge:
        return encode(records, first_index)
    if opts.too_long == "error":
        i = huge[0]
        raise UserError(
            f"{where(key, first_index + i)} has {text_chars(records[i], fmt):,} characters of text, more "
            f"than data.sequence_len={opts.sequence_len} tokens can hold (a token is at most "
            f"{per_token} characters)",
            hint="raise data.sequence_len, or set data.too_long=drop|truncate",
        )
    if opts.too_long == "truncate":
        limit = (opts.sequence_len + SPARE_TOKENS) * per_token
        picked = set(huge)
        return encode([cut(r, fmt, limit) if i in picked else r for i, r in enumerate(records)], first_index)
    examples: list[Example] = []
    stats = EncodeStats()
    start = 0
    for stop in [*huge, len(records)]:  # the runs of records between huge ones, with their own indices
        if stop > start:
            part, part_stats = encode(records[start:stop], first_index + start)
            examples += part
            stats = stats.merge(part_stats)
        start = stop + 1
    stats.read += len(huge)
    stats.dropped["too_long"] = stats.dropped.get("too_long", 0) + len(huge)
    return examples, stats
