"""The prompt format a run trained on, as the chat template its exported tokenizer carries.

Why: `pipeline("text-generation")` and `apply_chat_template` prompt through the tokenizer's chat
template. Exported as is, a model trained on alpaca prompts would be prompted in the tokenizer's own
(e.g. chatml) layout it never saw, and answer garbage. So the export sets the template that renders
exactly the training prompt: for alpaca data a template made from the alpaca prompt (with the bos token
training's tokenization put in front), for chat data the template the conversations were rendered
with; raw-text formats (completion, pretokenized, input_output) have no prompt layout, so the exported
tokenizer carries no template rather than a misleading one. Preference and KTO data follow their
`template`: the alpaca ones as alpaca, chat as chat, none as raw text.

The first training dataset's format decides (a mix of formats has no single prompt layout; the model
card lists every dataset's).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from trainer.config import TrainConfig
from trainer.config.dataset import AlpacaFormat, ChatFormat, KtoFormat, PreferenceFormat
from trainer.data.chat_templates import resolve_chat_template
from trainer.data.formats import alpaca

Kind = Literal["alpaca", "chat", "raw"]


@dataclass(frozen=True)
class PromptFormat:
    kind: Kind  # alpaca: the alpaca template; chat: conversations; raw: text in, text out
    dataset: str  # the config key of the dataset whose format decides
    format_type: str  # its data.datasets.*.format.type
    template: str | None  # the chat template the exported tokenizer carries; None: it carries none
    style: str = ""  # alpaca | alpaca_short for kind alpaca


def bos_expression(tokenizer: Any) -> str:
    """What a Jinja template writes first so that tokenizing it without special tokens gives what the
    tokenizer gives with them: `bos_token` when it puts its bos first, the literal text of whatever
    else it puts first, '' when it adds nothing in front."""
    with_special = tokenizer("x", add_special_tokens=True, verbose=False)["input_ids"]
    plain = tokenizer("x", add_special_tokens=False, verbose=False)["input_ids"]
    added = with_special[: len(with_special) - len(plain)] if with_special[-len(plain) :] == plain else []
    if not added:
        return ""
    if added == [tokenizer.bos_token_id]:
        return "bos_token"
    return alpaca.literal(tokenizer.decode(added, skip_special_tokens=False))


def prompt_format(cfg: TrainConfig, tokenizer: Any) -> PromptFormat:
    name, dataset = next(iter(cfg.data.datasets.items()))
    fmt = dataset.format
    key = f"data.datasets.{name}"
    prompted = isinstance(fmt, AlpacaFormat | PreferenceFormat | KtoFormat)
    if prompted and fmt.template in ("alpaca", "alpaca_short"):
        template = alpaca.chat_template(fmt.template, bos_expression(tokenizer))
        return PromptFormat("alpaca", key, fmt.type, template, fmt.template)
    if isinstance(fmt, ChatFormat) or (prompted and fmt.template == "chat"):
        return PromptFormat("chat", key, fmt.type, resolve_chat_template(cfg.data.chat_template, tokenizer))
    return PromptFormat("raw", key, fmt.type, None)


@contextmanager
def carrying(tokenizer: Any, fmt: PromptFormat) -> Iterator[Any]:
    """The tokenizer with the run's prompt template for as long as it is saved, then as it was: the
    same tokenizer object serves generation after the export."""
    before = tokenizer.chat_template
    tokenizer.chat_template = fmt.template
    try:
        yield tokenizer
    finally:
        tokenizer.chat_template = before
