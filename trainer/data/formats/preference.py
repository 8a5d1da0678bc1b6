"""Preference pairs {prompt, chosen, rejected} -> one example: the chosen sequence, then the rejected one.

Each half is `prompt + response + eos`, encoded as a supervised example of the template would be
(prompted.py), and the label at the rejected half's first token is PAIR_START, so a pair travels through
split, mix, duplicates and the cache as one example and the collator can cut it apart again.

Length: EACH half must fit data.sequence_len. `too_long=drop` drops the pair; `truncate` cuts each too
long half at the end of its response, never the prompt: when the prompt alone fills sequence_len there
is no response left to compare, so the pair is dropped (counted too_long) even under truncate;
`error` names the example and the half. A pair whose chosen and rejected responses are the same teaches
nothing and is dropped, counted `identical`.

`prompt: null` (Anthropic HH: the whole dialogue in chosen and rejected) takes as prompt the longest
common start of the two texts, cut back to the whitespace before the word where they part, so the
prompt ends on a word and each response starts with that whitespace.
"""

from __future__ import annotations

import os
from typing import Any

from trainer.config.dataset import PreferenceFormat
from trainer.data.encoded import PAIR_START, EncodeOptions, EncodeStats, Example, trained_count
from trainer.data.formats import prompted
from trainer.data.formats.common import FORMAT_HINT, require_record, where
from trainer.errors import UserError

HALVES = ("chosen", "rejected")


def common_prompt(chosen: str, rejected: str, key: str, index: int) -> tuple[str, str, str]:
    """(prompt, chosen response, rejected response) of two texts that start with the same prompt."""
    if chosen.startswith(rejected) or rejected.startswith(chosen):
        raise UserError(
            f"{where(key, index)}: with no prompt field the prompt is the common start of chosen and "
            "rejected, but one of them is the start of the other, so one response would be empty",
            hint=f"set {key}.format.prompt to the field holding the prompt, or fix the record",
        )
    i = len(os.path.commonprefix([chosen, rejected]))
    while i > 0 and not chosen[i - 1].isspace():  # back over the word where they part
        i -= 1
    while i > 0 and chosen[i - 1].isspace():  # and the whitespace before it, which starts the responses
        i -= 1
    if i == 0:
        raise UserError(
            f"{where(key, index)}: with no prompt field the prompt is the common start of chosen and "
            "rejected, but they have no whole word in common at the start",
            hint=f"set {key}.format.prompt to the field holding the prompt, or fix the record",
        )
    return chosen[:i], chosen[i:], rejected[i:]


def read_pair(record: Any, fmt: PreferenceFormat, key: str, index: int) -> tuple[prompted.Prompt, str, str]:
    """(prompt, chosen response, rejected response), checked."""
    record = require_record(record, key, index)
    chosen = prompted.read_response(record, fmt.chosen, fmt, key, index)
    rejected = prompted.read_response(record, fmt.rejected, fmt, key, index)
    if chosen.before != rejected.before:
        raise UserError(
            f"{where(key, index)}: the messages before the last assistant message differ between "
            f"{fmt.chosen!r} and {fmt.rejected!r}; a pair compares two responses to the same prompt",
            hint=FORMAT_HINT,
        )
    prompt = prompted.read_prompt(record, fmt, key, index, chosen.before)
    if prompt is not None:
        return prompt, chosen.text, rejected.text
    if chosen.text == rejected.text:  # identical: dropped by the caller, no prompt needed
        return prompted.Prompt(), chosen.text, rejected.text
    if isinstance(record[fmt.chosen], list):
        raise UserError(
            f"{where(key, index)}: no prompt: format.prompt is null and the message lists in "
            f"{fmt.chosen!r} and {fmt.rejected!r} hold no message before the response",
            hint=f"set {key}.format.prompt to the field holding the prompt",
        )
    text, chosen_text, rejected_text = common_prompt(chosen.text, rejected.text, key, index)
    return prompted.with_text(record, fmt, key, index, text=text), chosen_text, rejected_text


def encode(
    records: list[dict[str, Any]],
    fmt: PreferenceFormat,
    tokenizer: Any,
    opts: EncodeOptions,
    key: str,
    first_index: int = 0,
) -> tuple[list[Example], EncodeStats]:
    stats = EncodeStats(read=len(records))
    pairs = [read_pair(r, fmt, key, first_index + i) for i, r in enumerate(records)]
    live = [i for i, (_, c, r) in enumerate(pairs) if c != r]
    for _ in range(len(records) - len(live)):
        stats.drop("identical")
    units = [(pairs[i][0], pairs[i][1]) for i in live] + [(pairs[i][0], pairs[i][2]) for i in live]
    names = [where(key, first_index + i) for i in live] * 2
    seqs = prompted.sequences(units, fmt, tokenizer, opts, key, names)
    out: list[Example] = []
    for n, i in enumerate(live):
        name = where(key, first_index + i)
        halves = [prompted.fit(seqs[n + k * len(live)], opts, f"{name} ({h})") for k, h in enumerate(HALVES)]
        if halves[0] is None or halves[1] is None:
            stats.drop("too_long")
            continue
        (c_ids, c_labels), cut_c = halves[0]
        (r_ids, r_labels), cut_r = halves[1]
        labels = c_labels + [PAIR_START] + r_labels[1:]
        trained = trained_count(labels)
        if trained_count(c_labels) == 0 or trained_count(r_labels) == 0:
            stats.drop("no_trained_tokens")
            continue
        stats.kept += 1
        stats.truncated += int(cut_c or cut_r)
        stats.tokens += len(c_ids) + len(r_ids)
        stats.trained_tokens += trained
        out.append({"input_ids": c_ids + r_ids, "labels": labels})
    return out, stats


def generation_prompt(
    record: dict[str, Any], fmt: PreferenceFormat, tokenizer: Any, template: str | None
) -> str:
    """The pair's prompt rendered as in training; a record with only a prompt field (a plain prompt
    given to `trainer generate`) needs no responses."""
    record = require_record(record, "record", 0)
    if fmt.chosen in record or fmt.prompt is None:
        prompt = read_pair(record, fmt, "record", 0)[0]
    else:
        prompt = prompted.read_prompt(record, fmt, "record", 0, [])
    assert prompt is not None
    return prompted.generation_prompt(prompt, fmt, tokenizer, template)
