"""Record formats -> token ids with label masks, one module per `data.datasets.*.format.type`.

`encode_dataset` is the one entry point the data pipeline calls; every format sends each example
through `encoded.admit`, so the too-long policy and the drop counts are the same everywhere (records
too long to tokenize at all are screened by their characters first, in oversize.py).
`generation_prompt` gives the text a model is prompted with at generation time, rendered exactly as
the prompt part of a training example, so samples and evaluations see what training saw.
"""

from __future__ import annotations

from typing import Any

from trainer.config.dataset import (
    AlpacaFormat,
    ChatFormat,
    CompletionFormat,
    Format,
    InputOutputFormat,
    KtoFormat,
    PreferenceFormat,
    PretokenizedFormat,
)
from trainer.data.encoded import EncodeOptions, EncodeStats, Example
from trainer.data.formats import (
    alpaca,
    chat,
    completion,
    input_output,
    kto,
    oversize,
    preference,
    pretokenized,
)
from trainer.data.formats.messages import conversation
from trainer.errors import UserError

_ENCODERS = {
    "alpaca": alpaca.encode,
    "chat": chat.encode,
    "completion": completion.encode,
    "input_output": input_output.encode,
    "pretokenized": pretokenized.encode,
    "preference": preference.encode,
    "kto": kto.encode,
}

__all__ = ["encode_dataset", "generation_prompt", "generation_prompt_ids"]


def encode_dataset(
    records: list[dict],
    fmt: Format,
    tokenizer: Any,
    opts: EncodeOptions,
    key: str,
    *,
    first_index: int = 0,
) -> tuple[list[Example], EncodeStats]:
    """Encode one dataset's records. `key` (`data.datasets.alpaca`) names it in errors; `first_index`
    is the index of `records[0]` in the whole dataset, for when it is encoded in chunks. Records far
    beyond sequence_len are dealt with by their characters first, untokenized (oversize.py)."""
    encoder = _ENCODERS[fmt.type]

    def encode(part: list[dict], first: int) -> tuple[list[Example], EncodeStats]:
        return encoder(part, fmt, tokenizer, opts, key, first)

    return oversize.screen(records, fmt, opts, key, first_index, encode)


def generation_prompt(record: dict, fmt: Format, tokenizer: Any, chat_template: str | None) -> str:
    """The text before the (last) response, as in training.

    alpaca: the prompt before the response (system first when given); alpaca with template chat and
    chat: the messages before a final assistant turn (all of them when another role ends the
    conversation), rendered with the generation prompt;
    input_output: the segments before the first trained one; pretokenized: the ids before the first
    trained label, decoded; preference and kto: the prompt, as their template renders it before a
    response. Completion text has no prompt: UserError.
    """
    if isinstance(fmt, PreferenceFormat):
        return preference.generation_prompt(record, fmt, tokenizer, chat_template)
    if isinstance(fmt, KtoFormat):
        return kto.generation_prompt(record, fmt, tokenizer, chat_template)
    if isinstance(fmt, AlpacaFormat):
        return alpaca.generation_prompt(record, fmt, tokenizer, chat_template)
    if isinstance(fmt, ChatFormat):
        return chat.generation_prompt(conversation(record, fmt, "record", 0), tokenizer, chat_template)
    if isinstance(fmt, InputOutputFormat):
        return "".join(input_output.prompt_segments(record, fmt))
    if isinstance(fmt, PretokenizedFormat):
        return tokenizer.decode(pretokenized.prompt_ids(record, fmt), skip_special_tokens=False)
    assert isinstance(fmt, CompletionFormat)
    raise UserError(
        "completion records are trained as a whole and have no prompt to generate from",
        hint="prompt with an alpaca, chat or input_output dataset",
    )


def generation_prompt_ids(record: dict, fmt: Format, tokenizer: Any, chat_template: str | None) -> list[int]:
    """The prompt's token ids exactly as at the start of a training example: alpaca prompts with the
    tokenizer's special tokens, rendered chat text without (a template writes its own bos), input_output
    segments one by one after bos, pretokenized ids as given; preference and kto prompts as alpaca's
    (templates none, alpaca*) or chat's. Prefer this to tokenizing
    `generation_prompt` yourself."""
    if isinstance(fmt, PretokenizedFormat):
        return pretokenized.prompt_ids(record, fmt)
    if isinstance(fmt, InputOutputFormat):
        return input_output.generation_prompt_ids(record, fmt, tokenizer)
    text = generation_prompt(record, fmt, tokenizer, chat_template)
    special = isinstance(fmt, AlpacaFormat | PreferenceFormat | KtoFormat) and fmt.template != "chat"
    return tokenizer(text, add_special_tokens=special, verbose=False)["input_ids"]
