"""A chat's history, and the prompt each message is answered from, in the run's training format.

Why per format: a model answers well only what looks like its training data. Chat data (and alpaca
records with `template: chat`) were conversations rendered through the chat template, so the whole
history plus the new message is rendered the same way (`generation_prompt_ids` of a record holding the
messages) and the model sees its earlier replies as it saw assistant turns. Plain alpaca records were
single prompts: a history pasted into one would be text the model never saw, so each message is
answered on its own. Raw-text formats (completion, pretokenized, input_output) have no turns at all:
the message is continued as text. In every case a first message is rendered exactly as
`trainer generate` renders a plain prompt, so the two commands agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from trainer.config.dataset import AlpacaFormat, ChatFormat, Format, KtoFormat, PreferenceFormat
from trainer.inference.prompts import plain_prompt_ids, wrap_messages

Mode = Literal["conversation", "single", "raw"]

NOTES: dict[Mode, str] = {
    "conversation": "",
    "single": "history is not used by this model's format: alpaca records are single prompts, so each "
    "message is answered on its own",
    "raw": "this model was trained on raw text ({type} format): each message is continued as text, "
    "without history",
}


def mode_of(fmt: Format) -> Mode:
    """Preference and kto data count as their template: chat as conversations, alpaca as single
    prompts, none as raw text."""
    prompted = isinstance(fmt, AlpacaFormat | PreferenceFormat | KtoFormat)
    if isinstance(fmt, ChatFormat) or (prompted and fmt.template == "chat"):
        return "conversation"
    return "single" if prompted and fmt.template != "none" else "raw"


@dataclass
class Conversation:
    """The messages so far ({role, content}, user and assistant in turn) and how to prompt from them."""

    fmt: Format
    tokenizer: Any
    chat_template: str | None
    messages: list[dict[str, str]] = field(default_factory=list)

    @property
    def mode(self) -> Mode:
        return mode_of(self.fmt)

    @property
    def note(self) -> str:
        """What a user should know at the start: how (or whether) history is used."""
        return NOTES[self.mode].format(type=self.fmt.type)

    def prompt_ids(self, text: str) -> list[int]:
        """The ids the reply to `text` is generated from (the history, when the format has turns)."""
        from trainer.data.formats import generation_prompt_ids

        if self.mode != "conversation" or not self.messages:
            return plain_prompt_ids(text, self.fmt, self.tokenizer, self.chat_template)
        # An alpaca record with template chat is a one-turn conversation; longer ones are chat records.
        fmt = self.fmt if isinstance(self.fmt, ChatFormat) else ChatFormat()
        record = wrap_messages([*self.messages, {"role": "user", "content": text}], fmt)
        return generation_prompt_ids(record, fmt, self.tokenizer, self.chat_template)

    def add(self, text: str, reply: str) -> None:
        """Remember one exchange (only where the format has turns: elsewhere it would never be read)."""
        if self.mode == "conversation":
            self.messages += [{"role": "user", "content": text}, {"role": "assistant", "content": reply}]

    def reset(self) -> None:
        self.messages.clear()
