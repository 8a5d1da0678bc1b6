"""KTO records {prompt, completion, label} -> one example per record, its verdict in the labels.

The sequence is `prompt + completion + eos`, encoded as a supervised example of the template would be
(prompted.py); the label at position 0 (never a target) is DESIRABLE or UNDESIRABLE. The label field
must be a JSON boolean: 1, "yes" or "good" are refused rather than guessed. Too long examples follow
data.too_long as pairs do: truncate cuts the completion's end, never the prompt (an example whose prompt
alone fills sequence_len is dropped as too_long even under truncate).
"""

from __future__ import annotations

from typing import Any

from trainer.config.dataset import KtoFormat
from trainer.data.encoded import DESIRABLE, UNDESIRABLE, EncodeOptions, EncodeStats, Example, trained_count
from trainer.data.formats import prompted
from trainer.data.formats.common import FORMAT_HINT, got, require_record, where
from trainer.errors import UserError


def read_example(record: Any, fmt: KtoFormat, key: str, index: int) -> tuple[prompted.Prompt, str, bool]:
    """(prompt, completion, desirable), checked."""
    record = require_record(record, key, index)
    completion = prompted.read_response(record, fmt.completion, fmt, key, index)
    label = record.get(fmt.label)
    if not isinstance(label, bool):
        raise UserError(
            f"{where(key, index)}: field {fmt.label!r} is {got(record, fmt.label)}"
            + (f" ({label!r})" if fmt.label in record else "")
            + ", expected true (desirable) or false (undesirable)",
            hint=FORMAT_HINT,
        )
    prompt = prompted.read_prompt(record, fmt, key, index, completion.before)
    if prompt is None:
        raise UserError(
            f"{where(key, index)}: no prompt: format.prompt is null and field {fmt.completion!r} carries no "
            "messages before the completion",
            hint=f"set {key}.format.prompt to the field holding the prompt",
        )
    return prompt, completion.text, label


def encode(
    records: list[dict[str, Any]],
    fmt: KtoFormat,
    tokenizer: Any,
    opts: EncodeOptions,
    key: str,
    first_index: int = 0,
) -> tuple[list[Example], EncodeStats]:
    stats = EncodeStats(read=len(records))
    rows = [read_example(r, fmt, key, first_index + i) for i, r in enumerate(records)]
    names = [where(key, first_index + i) for i in range(len(rows))]
    seqs = prompted.sequences([(p, c) for p, c, _ in rows], fmt, tokenizer, opts, key, names)
    out: list[Example] = []
    for (_, _, desirable), seq, name in zip(rows, seqs, names, strict=True):
        fitted = prompted.fit(seq, opts, name)
        if fitted is None:
            stats.drop("too_long")
            continue
        (ids, labels), cut = fitted
        labels = [DESIRABLE if desirable else UNDESIRABLE, *labels[1:]]
        trained = trained_count(labels)
        if trained == 0:
            stats.drop("no_trained_tokens")
            continue
        stats.kept += 1
        stats.truncated += int(cut)
        stats.tokens += len(ids)
        stats.trained_tokens += trained
        out.append({"input_ids": ids, "labels": labels})
    return out, stats


def generation_prompt(record: dict[str, Any], fmt: KtoFormat, tokenizer: Any, template: str | None) -> str:
    """The example's prompt rendered as in training; a record with only a prompt field needs no
    completion or label."""
    record = require_record(record, "record", 0)
    if fmt.completion in record:
        prompt = read_example(record, fmt, "record", 0)[0]
    else:
        prompt = prompted.read_prompt(record, fmt, "record", 0, [])
        if prompt is None:
            raise UserError(
                "a kto record with format.prompt null needs its completion messages to prompt from"
            )
    return prompted.generation_prompt(prompt, fmt, tokenizer, template)
