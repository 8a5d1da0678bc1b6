"""Prompts in the training format, for `trainer generate`.

Each prompt is rendered exactly as the prompt part of a training example (the run's first training
dataset's format and chat template, through `generation_prompt_ids`), so the model sees what it learned
from: a plain prompt becomes that format's record (alpaca: the instruction; chat: one user message;
input_output: one untrained segment; completion and pretokenized: the text itself after bos).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.config import ConfigError, TrainConfig
from trainer.config.dataset import (
    AlpacaFormat,
    ChatFormat,
    CompletionFormat,
    DatasetConfig,
    Format,
    InputOutputFormat,
    KtoFormat,
    PreferenceFormat,
    PretokenizedFormat,
)
from trainer.config.problems import Problem
from trainer.errors import UserError

_RAW_TEXT = (CompletionFormat, PretokenizedFormat)  # trained without a prompt: the text is the prompt
PLAIN_PROMPT = "prompt"  # the field a plain prompt goes in for preference formats with `prompt: null`


def training_format(cfg: TrainConfig) -> Format:
    """The format of the first training dataset: what prompts are rendered as."""
    return next(iter(cfg.data.datasets.values())).format


def wrap_prompt(text: str, fmt: Format) -> dict[str, Any]:
    """A plain prompt as a record of `fmt`: the record a user would have written with only a prompt."""
    if isinstance(fmt, AlpacaFormat):
        return {fmt.instruction: text}
    if isinstance(fmt, ChatFormat):
        return wrap_messages([{"role": "user", "content": text}], fmt)
    if isinstance(fmt, PreferenceFormat | KtoFormat):
        return {fmt.prompt or PLAIN_PROMPT: text}
    assert isinstance(fmt, InputOutputFormat), "raw-text formats take the text itself (_text_ids)"
    return {fmt.field: [{fmt.text: text, fmt.label: False}]}


def wrap_messages(messages: list[dict[str, str]], fmt: ChatFormat) -> dict[str, Any]:
    """{role, content} messages as a record of `fmt` (ShareGPT: `from` values through the role map)."""
    if fmt.style == "sharegpt":
        sender = {role: k for k, role in reversed(fmt.role_map.items())}  # the first name of each role
        return {fmt.field: [{"from": sender[m["role"]], "value": m["content"]} for m in messages]}
    return {fmt.field: [{"role": m["role"], "content": m["content"]} for m in messages]}


@dataclass(frozen=True)
class Prompt:
    shown: str  # the plain prompt, or a file record's rendered prompt
    ids: list[int]


def require_prompts(cfg: TrainConfig) -> None:
    if not cfg.infer.prompts and cfg.infer.prompt_file is None:
        problem = Problem(
            "infer.prompts",
            [],
            "generate needs something to complete",
            "pass 'infer.prompts=[Reverse the words.]' or infer.prompt_file=FILE",
        )
        raise ConfigError([problem])


def _text_ids(text: str, tokenizer: Any) -> list[int]:
    """bos + the text, as raw-text formats start a training document."""
    from trainer.data.formats.common import bos_ids

    return bos_ids(tokenizer) + tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]


def plain_prompt_ids(text: str, fmt: Format, tokenizer: Any, chat_template: str | None) -> list[int]:
    """A plain prompt's ids: wrapped as a record of `fmt` (raw-text formats: bos + the text itself)."""
    from trainer.data.formats import generation_prompt_ids

    if isinstance(fmt, _RAW_TEXT):
        return _text_ids(text, tokenizer)
    if isinstance(fmt, PreferenceFormat | KtoFormat) and fmt.prompt is None:
        # No prompt field (it was derived from the responses): a plain prompt is the prompt text itself.
        fmt = fmt.model_copy(update={"prompt": PLAIN_PROMPT})
    return generation_prompt_ids(wrap_prompt(text, fmt), fmt, tokenizer, chat_template)


def _file_records(cfg: TrainConfig, fmt: Format) -> list[dict[str, Any]]:
    from trainer.data.sources import load_records

    given = cfg.infer.prompt_file
    if given is None:
        return []
    path = Path(given).expanduser()
    if not path.is_file():
        raise UserError(
            f"infer.prompt_file={given}: file not found",
            hint="give a JSON or JSONL file of records in the training format",
        )
    return load_records(DatasetConfig(path=str(path), format=fmt), "infer.prompt_file")


def build_prompts(cfg: TrainConfig, fmt: Format, tokenizer: Any, chat_template: str | None) -> list[Prompt]:
    """infer.prompts (wrapped as records of `fmt`), then infer.prompt_file's records, as token ids."""
    from trainer.data.formats import generation_prompt_ids
    from trainer.data.formats.common import text_field, where

    prompts = [Prompt(p, plain_prompt_ids(p, fmt, tokenizer, chat_template)) for p in cfg.infer.prompts]
    for i, record in enumerate(_file_records(cfg, fmt)):
        try:
            if isinstance(fmt, CompletionFormat):
                ids = _text_ids(text_field(record, fmt.field, "record", 0, "the text to continue"), tokenizer)
            else:
                ids = generation_prompt_ids(record, fmt, tokenizer, chat_template)
        except UserError as err:  # the formats call it "record: example 0"; name it in the file
            message = err.message.replace(where("record", 0), f"record {i}")
            raise UserError(f"infer.prompt_file={cfg.infer.prompt_file}: {message}", hint=err.hint) from None
        prompts.append(Prompt(tokenizer.decode(ids, skip_special_tokens=True).strip(), ids))
    return prompts


def decoding(cfg: TrainConfig) -> tuple[str, int]:
    """How completions are decoded (greedy or sampling), and the seed set before each one."""
    seed = cfg.infer.seed if cfg.infer.seed is not None else cfg.run.seed
    return ("sampling" if cfg.infer.do_sample else "greedy"), seed


def generation_options(cfg: TrainConfig, tokenizer: Any) -> dict[str, Any]:
    infer = cfg.infer
    options: dict[str, Any] = {
        "max_new_tokens": infer.max_new_tokens,
        "do_sample": infer.do_sample,
        "pad_token_id": tokenizer.pad_token_id,
    }
    for name in ("temperature", "top_p", "top_k"):
        value = getattr(infer, name)
        if value is not None:
            options[name] = value
    return options
