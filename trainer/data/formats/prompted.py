"""What preference and KTO records share: a prompt, responses to it, and one template that renders both.

Why a response is encoded exactly as a supervised example of the same template: a model SFT-trained on
`alpaca_short` (or a chat template) and then preference-tuned must see the same prompt ids in both
stages, or the preference loss compares responses to a prompt the model never saw. So each
(prompt, response) goes through the alpaca or chat code paths unchanged: `none` and the alpaca
templates tokenize prompt and response apart (bos first, eos last), `chat` renders messages through the
chat template and trains only the last assistant turn (earlier assistant turns are prompt).

A response given as a message list (UltraFeedback binarized) is its last assistant message; the
messages before it are the prompt, and then the `prompt` field is not read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trainer.config.dataset import ChatFormat, KtoFormat, PreferenceFormat
from trainer.data.encoded import IGNORE, EncodeOptions
from trainer.data.formats import alpaca, chat
from trainer.data.formats.common import FORMAT_HINT, got, optional_text, where
from trainer.data.formats.messages import Message, conversation
from trainer.errors import UserError

PromptedFormat = PreferenceFormat | KtoFormat
Sequence = tuple[list[int], list[int]]  # (ids, labels)


@dataclass(frozen=True)
class Prompt:
    text: str = ""  # the prompt as text (alpaca instruction, user message, raw text)
    messages: list[Message] | None = None  # or as chat messages (template chat)
    input: str = ""
    system: str = ""


@dataclass(frozen=True)
class Response:
    text: str
    before: list[Message] = field(default_factory=list)  # a message list's messages before the response


def _fail(key: str, index: int, detail: str, hint: str = FORMAT_HINT) -> UserError:
    return UserError(f"{where(key, index)}{detail}", hint=hint)


def _chat_only(fmt: PromptedFormat, name: str, key: str, index: int) -> None:
    if fmt.template != "chat":
        raise _fail(
            key,
            index,
            f": field {name!r} is a message list, which only template chat renders",
            hint=f"set {key}.format.template=chat, or give the field as text",
        )


def _messages(value: list[Any], key: str, index: int) -> list[Message]:
    """A message list in the OpenAI or ShareGPT shape, normalized as chat records are."""
    return conversation({"messages": value}, ChatFormat(), key, index)[0]


def read_response(record: dict[str, Any], name: str, fmt: PromptedFormat, key: str, index: int) -> Response:
    """A response field: text, or a message list whose last assistant message is the response."""
    value = record.get(name)
    if isinstance(value, str):
        return Response(value)
    if not isinstance(value, list) or not value:
        what = "empty" if isinstance(value, list) else got(record, name)
        raise _fail(key, index, f" has no text or message list in field {name!r} ({what})")
    _chat_only(fmt, name, key, index)
    messages = _messages(value, key, index)
    last = max((k for k, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None:
        raise _fail(key, index, f": the message list in field {name!r} has no assistant message to learn")
    if last != len(messages) - 1:
        raise _fail(
            key,
            index,
            f": the message list in field {name!r} goes on after its last assistant message "
            f"(with a {messages[-1]['role']} message); the response must be the last message",
        )
    return Response(messages[last]["content"], messages[:last])


def read_prompt(
    record: dict[str, Any], fmt: PromptedFormat, key: str, index: int, carried: list[Message]
) -> Prompt | None:
    """The prompt: the messages a response list carried, else the `prompt` field; None when the format
    has no prompt field (`prompt: null`) and nothing was carried, for the caller to derive one."""
    if carried:
        return with_text(record, fmt, key, index, messages=carried)
    if fmt.prompt is None:
        return None
    value = record.get(fmt.prompt)
    if isinstance(value, str):
        return with_text(record, fmt, key, index, text=value)
    if isinstance(value, list) and value:
        _chat_only(fmt, fmt.prompt, key, index)
        return with_text(record, fmt, key, index, messages=_messages(value, key, index))
    raise _fail(
        key,
        index,
        f" has no prompt: field {fmt.prompt!r} is {got(record, fmt.prompt)}, expected text"
        + (" or a message list" if fmt.template == "chat" else ""),
        hint=f"set {key}.format.prompt to the field holding the prompt"
        + (
            " (or null: the common start of chosen and rejected)" if isinstance(fmt, PreferenceFormat) else ""
        ),
    )


def with_text(
    record: dict[str, Any],
    fmt: PromptedFormat,
    key: str,
    index: int,
    text: str = "",
    messages: list[Message] | None = None,
) -> Prompt:
    """A prompt of this text or these messages, with the record's optional input and system fields."""
    inp = optional_text(record, fmt.input, key, index)
    system = optional_text(record, fmt.system, key, index)
    return Prompt(text=text, messages=messages, input=inp, system=system)


def to_messages(prompt: Prompt, response: str | None) -> list[Message]:
    """The prompt (and response, unless None) as chat messages: a text prompt as alpaca's chat template
    makes it (system, user = prompt + input), a message prompt as given with the system put first."""
    if prompt.messages is None:
        return alpaca.to_messages(prompt.text, prompt.input, response, prompt.system)
    messages = list(prompt.messages)
    if prompt.system and not (messages and messages[0]["role"] == "system"):
        messages.insert(0, {"role": "system", "content": prompt.system})
    if response is not None:
        messages.append({"role": "assistant", "content": response})
    return messages


def prompt_text(prompt: Prompt, fmt: PromptedFormat) -> str:
    """The text before the response for the non-chat templates (`none`: the prompt as it is)."""
    if fmt.template == "none":
        return prompt.text
    return alpaca.render_prompt(prompt.text, prompt.input, prompt.system, fmt.template)


def sequences(
    units: list[tuple[Prompt, str]],
    fmt: PromptedFormat,
    tokenizer: Any,
    opts: EncodeOptions,
    key: str,
    names: list[str],
) -> list[Sequence]:
    """(ids, labels) of each (prompt, response) as a supervised example of the template: prompt untrained,
    response (+ eos or end-of-turn) trained. `names` name each unit's record in errors."""
    if not units:
        return []
    if fmt.template == "chat":
        template = chat.require_template(opts.chat_template, key)
        convs = [(to_messages(p, r), None) for p, r in units]
        return chat.labelled(convs, tokenizer, template, names, last_only=True)
    return alpaca.prompt_then_response(
        [prompt_text(p, fmt) for p, _ in units], [r for _, r in units], tokenizer
    )


def generation_prompt(prompt: Prompt, fmt: PromptedFormat, tokenizer: Any, template: str | None) -> str:
    if fmt.template == "chat":
        return chat.generation_prompt((to_messages(prompt, None), None), tokenizer, template)
    return prompt_text(prompt, fmt)


def fit(seq: Sequence, opts: EncodeOptions, name: str) -> tuple[Sequence, bool] | None:
    """The sequence within data.sequence_len: as it is, cut at the response's end (truncate), or None
    (drop). The prompt is never cut: a prompt that leaves no room for one response token is dropped even
    under truncate. `name` (`data.datasets.x: example 3 (rejected)`) names it for too_long=error."""
    ids, labels = seq
    if len(ids) <= opts.sequence_len:
        return seq, False
    if opts.too_long == "error":
        raise UserError(
            f"{name} has {len(ids)} tokens, more than data.sequence_len={opts.sequence_len}",
            hint="raise data.sequence_len, or set data.too_long=drop|truncate",
        )
    prompt_len = next((i for i, t in enumerate(labels) if t != IGNORE), len(labels))
    if opts.too_long == "drop" or prompt_len >= opts.sequence_len:
        return None
    return (ids[: opts.sequence_len], labels[: opts.sequence_len]), True
