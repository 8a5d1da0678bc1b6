"""Alpaca-format records -> token ids with a label mask that trains on the response only.

The prompt and the response are tokenized separately so the boundary between them is exact: labels
are -100 over the prompt (unless `train_on_inputs`) and cover the response plus the EOS token, which
is what teaches the model to stop. Generation tokenizes the same prompt the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trainer.errors import UserError

IGNORE = -100

PREAMBLE = {
    "with_input": "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n",
    "no_input": "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n",
}


def render_prompt(record: dict[str, Any], style: str) -> str:
    """The text before the response; `alpaca` is the original template, `alpaca_short` drops the preamble."""
    instruction, inp = record["instruction"], record.get("input") or ""
    body = f"### Instruction:\n{instruction}\n\n"
    if inp:
        body += f"### Input:\n{inp}\n\n"
    body += "### Response:\n"
    if style == "alpaca":
        return PREAMBLE["with_input" if inp else "no_input"] + body
    return body


@dataclass
class EncodeStats:
    read: int = 0
    kept: int = 0
    dropped_too_long: int = 0
    truncated: int = 0
    tokens: int = 0
    trained_tokens: int = 0
    notes: list[str] = field(default_factory=list)


def check_fields(records: list[dict[str, Any]], key: str) -> None:
    for i, r in enumerate(records):
        for name in ("instruction", "output"):
            if not isinstance(r.get(name), str):
                got = "missing" if name not in r else f"a {type(r[name]).__name__}"
                raise UserError(
                    f"{key}: example {i} has no text field {name!r} ({got}); alpaca records need "
                    "instruction, output and optionally input",
                    hint="fix the record, or choose the data.format that matches the file",
                )


def encode(
    records: list[dict[str, Any]],
    tokenizer: Any,
    *,
    key: str,
    prompt_style: str,
    sequence_len: int,
    train_on_inputs: bool,
    too_long: str,
) -> tuple[list[dict[str, list[int]]], EncodeStats]:
    check_fields(records, key)
    prompts = [render_prompt(r, prompt_style) for r in records]
    responses = [r["output"] for r in records]
    prompt_ids = tokenizer(prompts, add_special_tokens=True)["input_ids"]
    response_ids = tokenizer(responses, add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    stats = EncodeStats(read=len(records))
    out = []
    for i, (p, r) in enumerate(zip(prompt_ids, response_ids, strict=True)):
        ids = p + r + [eos]
        labels = list(ids) if train_on_inputs else [IGNORE] * len(p) + r + [eos]
        if len(ids) > sequence_len:
            if too_long == "error":
                raise UserError(
                    f"{key}: example {i} has {len(ids)} tokens, more than data.sequence_len={sequence_len}",
                    hint="raise data.sequence_len, or set data.too_long=drop|truncate",
                )
            if too_long == "drop":
                stats.dropped_too_long += 1
                continue
            ids, labels = ids[:sequence_len], labels[:sequence_len]
            stats.truncated += 1
        out.append({"input_ids": ids, "labels": labels})
        stats.tokens += len(ids)
        stats.trained_tokens += sum(1 for t in labels if t != IGNORE)
    stats.kept = len(out)
    if not out:
        raise UserError(
            f"{key}: no example is left after filtering ({stats.dropped_too_long} longer than "
            f"data.sequence_len={sequence_len})",
            hint="raise data.sequence_len or set data.too_long=truncate",
        )
    return out, stats
