"""Conversations -> token ids, trained on the chosen roles' turns, through a Jinja chat template.

Why prefix renders: a template is free to wrap contents in any headers and end-of-turn markers, so the
only template-agnostic way to find where a message's trained text lies is to render the conversation
up to it. `messages[:k]` with the generation prompt ends where assistant message k's content begins;
`messages[:k+1]` ends after its end-of-turn marker (trailing whitespace trimmed, so the newline the
template puts between turns is not trained but `</s>` / `<|im_end|>` / `<|eot_id|>` is). Both must be
prefixes of the full text, or the character positions mean nothing; templates that rewrite earlier
turns (e.g. dropping past reasoning) are rejected with a clear error. The full text is then tokenized
once, with offsets, and a token is trained when it overlaps a trained span (so a token that merges
a header's last character with the content's first is trained).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Collection
from typing import Any

from trainer.config.dataset import ChatFormat
from trainer.data.encoded import IGNORE, EncodeOptions, EncodeStats, Example
from trainer.data.formats.common import admit_each, where
from trainer.data.formats.messages import Message, conversation
from trainer.errors import UserError

Tools = list[dict[str, Any]] | None
Conversation = tuple[list[Message], Tools]
NO_TEMPLATE_HINT = (
    "the built-in templates need no tokenizer support; or use a tokenizer that ships a template"
)


def require_template(template: str | None, key: str) -> str:
    if not template:
        raise UserError(
            f"{key}: the tokenizer has no chat template; set data.chat_template=chatml|llama3",
            hint=NO_TEMPLATE_HINT,
        )
    return template


def render(tokenizer: Any, messages: list[Message], tools: Tools, template: str, gen: bool) -> str:
    return tokenizer.apply_chat_template(
        messages, tools=tools, chat_template=template, tokenize=False, add_generation_prompt=gen
    )


class _Renderer:
    """Renders the prefixes of one conversation, each at most once, and checks they are prefixes."""

    def __init__(self, tokenizer: Any, conv: Conversation, template: str, name: str) -> None:
        self.tokenizer, self.template, self.name = tokenizer, template, name
        self.messages, self.tools = conv
        self.cache: dict[tuple[int, bool], str] = {}
        self.full = self.prefix(len(self.messages), False, check=False)

    def prefix(self, k: int, gen: bool, check: bool = True) -> str:
        if k == 0 and not gen:
            return ""
        if (k, gen) not in self.cache:
            try:
                text = render(self.tokenizer, self.messages[:k], self.tools, self.template, gen)
            except Exception as err:  # Jinja errors, raise_exception() in templates
                raise UserError(
                    f"{self.name}: the chat template failed on the first {k} messages "
                    f"({type(err).__name__}: {str(err)[:200]})",
                    hint="check the messages' roles and order, or choose another data.chat_template",
                ) from None
            if check and not self.full.startswith(text):
                raise UserError(
                    f"{self.name}: the chat template is not prefix-stable: the first {k} messages render to "
                    "text that is not the start of the whole conversation, so the trained turns cannot be "
                    "located",
                    hint="use a template that renders earlier turns unchanged (data.chat_template=chatml|"
                    "llama3), or train on every token (data.train_on_inputs=true)",
                )
            self.cache[(k, gen)] = text
        return self.cache[(k, gen)]

    def span(self, k: int) -> tuple[int, int]:
        """Characters of message k that are trained: its content and end-of-turn, not its header."""
        end = len(self.prefix(k + 1, False).rstrip())
        if self.messages[k]["role"] == "assistant" and k > 0:
            return len(self.prefix(k, True)), end
        # No generation prompt marks where other roles begin: find the content inside the turn's text.
        before = len(self.prefix(k, False))
        content = self.messages[k].get("content", "").strip()
        pos = self.full.rfind(content, before, end) if content else -1
        return (pos if pos >= 0 else before), end


def trained_spans(renderer: _Renderer, roles: set[str]) -> list[tuple[int, int]]:
    spans = [renderer.span(k) for k, m in enumerate(renderer.messages) if m["role"] in roles]
    return [(a, b) for a, b in spans if b > a]


def token_ranges(offsets: list[tuple[int, int]], spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """For each character span, the range of tokens [lo, hi) that overlap it.

    Token starts and ends never decrease along the text, so two bisections per span do it; a Python
    loop over every token cost as much as the tokenizer itself.
    """
    out = []
    for a, b in spans:
        lo = bisect_right(offsets, a, key=lambda o: o[1])  # first token ending after a
        hi = bisect_left(offsets, b, lo=lo, key=lambda o: o[0])  # first token starting at or after b
        if hi > lo:
            out.append((lo, hi))
    return out


def labelled(
    convs: list[Conversation],
    tokenizer: Any,
    template: str,
    names: list[str],
    roles: Collection[str] = ("assistant",),
    last_only: bool = False,
) -> list[tuple[list[int], list[int]]]:
    """(ids, labels) per conversation: the messages of `roles` trained (content and end-of-turn), or with
    `last_only` only the last message (a preference response: earlier assistant turns are prompt).
    `names` name each conversation's record in errors (`data.datasets.x: example 3`)."""
    renderers = [_Renderer(tokenizer, conv, template, name) for conv, name in zip(convs, names, strict=True)]
    enc = tokenizer(
        [r.full for r in renderers], return_offsets_mapping=True, add_special_tokens=False, verbose=False
    )
    out = []
    for r, ids, offsets in zip(renderers, enc["input_ids"], enc["offset_mapping"], strict=True):
        spans = [r.span(len(r.messages) - 1)] if last_only else trained_spans(r, set(roles))
        labels = [IGNORE] * len(ids)
        for lo, hi in token_ranges(offsets, [(a, b) for a, b in spans if b > a]):
            labels[lo:hi] = ids[lo:hi]
        out.append((ids, labels))
    return out


def encode_conversations(
    convs: list[Conversation],
    roles: list[str],
    tokenizer: Any,
    opts: EncodeOptions,
    key: str,
    first_index: int = 0,
) -> tuple[list[Example], EncodeStats]:
    template = require_template(opts.chat_template, key)
    names = [where(key, first_index + i) for i in range(len(convs))]
    pairs = labelled(convs, tokenizer, template, names, roles)
    return admit_each(pairs, opts, key, first_index, len(convs))


def encode(
    records: list[dict[str, Any]],
    fmt: ChatFormat,
    tokenizer: Any,
    opts: EncodeOptions,
    key: str,
    first_index: int = 0,
) -> tuple[list[Example], EncodeStats]:
    require_template(opts.chat_template, key)
    convs = [conversation(rec, fmt, key, first_index + i) for i, rec in enumerate(records)]
    return encode_conversations(convs, fmt.roles, tokenizer, opts, key, first_index)


def prompt_messages(messages: list[Message]) -> list[Message]:
    """The messages before the last assistant turn; all of them when the conversation ends with another
    role (a user's next question, a tool's result: what a chat asks the model to answer next)."""
    ends_with_answer = bool(messages) and messages[-1]["role"] == "assistant"
    return messages[:-1] if ends_with_answer else messages


def generation_prompt(conv: Conversation, tokenizer: Any, template: str | None) -> str:
    messages, tools = conv
    prompt = prompt_messages(messages)
    if not prompt:
        raise UserError(
            "the conversation starts with the assistant turn, so there is no prompt to generate from"
        )
    return render(tokenizer, prompt, tools, require_template(template, "data"), True)
