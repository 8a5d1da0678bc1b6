"""Alpaca records (instruction, optional input and system, output) -> ids trained on the response.

With the `alpaca` / `alpaca_short` templates the prompt and the response are tokenized separately so
the boundary between them is exact: labels are IGNORE over the prompt (unless train_on_inputs) and
cover the response plus eos, which is what teaches the model to stop. Generation tokenizes the same
prompt the same way (add_special_tokens=True). The `chat` template turns the record into
system/user/assistant messages and goes through the chat path instead.
"""

from __future__ import annotations

import json
from typing import Any

from trainer.config.dataset import AlpacaFormat
from trainer.data.encoded import IGNORE, EncodeOptions, EncodeStats, Example
from trainer.data.formats import chat
from trainer.data.formats.common import admit_each, eos_id, optional_text, require_record, text_field
from trainer.data.formats.messages import Message

PREAMBLE = {
    "with_input": "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n",
    "no_input": "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n",
}
INSTRUCTION, INPUT, RESPONSE = "### Instruction:\n", "### Input:\n", "### Response:\n"
NEEDS = "alpaca records need instruction and output, and optionally input and system"


def render_prompt(instruction: str, inp: str, system: str, style: str) -> str:
    """The text before the response; `alpaca` is the original template, `alpaca_short` drops the
    preamble. A system prompt, when given, comes first, separated by a blank line."""
    body = f"{INSTRUCTION}{instruction}\n\n"
    if inp:
        body += f"{INPUT}{inp}\n\n"
    body += RESPONSE
    if style == "alpaca":
        body = PREAMBLE["with_input" if inp else "no_input"] + body
    return f"{system}\n\n{body}" if system else body


def fields(
    record: Any, fmt: AlpacaFormat, key: str, index: int, need_output: bool = True
) -> tuple[str, str, str, str]:
    """(instruction, input, output, system), checked: instruction and (for training) output are text."""
    record = require_record(record, key, index)
    instruction = text_field(record, fmt.instruction, key, index, NEEDS)
    output = text_field(record, fmt.output, key, index, NEEDS) if need_output else ""
    inp = optional_text(record, fmt.input, key, index)
    system = optional_text(record, fmt.system, key, index)
    return instruction, inp, output, system


def to_messages(instruction: str, inp: str, output: str | None, system: str) -> list[Message]:
    """The record as a conversation; `output=None` leaves the assistant turn out (a generation prompt)."""
    messages: list[Message] = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": instruction + (f"\n\n{inp}" if inp else "")})
    if output is not None:
        messages.append({"role": "assistant", "content": output})
    return messages


def encode(
    records: list[dict[str, Any]],
    fmt: AlpacaFormat,
    tokenizer: Any,
    opts: EncodeOptions,
    key: str,
    first_index: int = 0,
) -> tuple[list[Example], EncodeStats]:
    rows = [fields(r, fmt, key, first_index + i) for i, r in enumerate(records)]
    if fmt.template == "chat":
        chat.require_template(opts.chat_template, key)
        convs = [(to_messages(*row), None) for row in rows]
        return chat.encode_conversations(convs, ["assistant"], tokenizer, opts, key, first_index)
    prompts = [render_prompt(ins, inp, system, fmt.template) for ins, inp, _, system in rows]
    pairs = prompt_then_response(prompts, [row[2] for row in rows], tokenizer)
    return admit_each(pairs, opts, key, first_index, len(records))


def prompt_then_response(
    prompts: list[str], responses: list[str], tokenizer: Any
) -> list[tuple[list[int], list[int]]]:
    """(ids, labels) per prompt: the prompt tokenized with the tokenizer's special tokens (bos) and
    untrained, then the response tokenized on its own plus eos, trained. Tokenizing the two apart makes
    the boundary exact whatever the tokenizer would merge across it."""
    prompt_ids = tokenizer(prompts, add_special_tokens=True, verbose=False)["input_ids"]
    response_ids = tokenizer(responses, add_special_tokens=False, verbose=False)["input_ids"]
    eos = [eos_id(tokenizer)]
    return [(p + r + eos, [IGNORE] * len(p) + r + eos) for p, r in zip(prompt_ids, response_ids, strict=True)]


def generation_prompt(record: dict[str, Any], fmt: AlpacaFormat, tokenizer: Any, template: str | None) -> str:
    instruction, inp, _, system = fields(record, fmt, "record", 0, need_output=False)
    if fmt.template == "chat":
        conv = (to_messages(instruction, inp, None, system), None)
        return chat.generation_prompt(conv, tokenizer, template)
    return render_prompt(instruction, inp, system, fmt.template)


def literal(text: str) -> str:
    """`text` as a Jinja string literal (JSON's quoting is valid Jinja)."""
    return json.dumps(text, ensure_ascii=False)


def chat_template(style: str, bos: str) -> str:
    """A Jinja chat template that renders messages as `render_prompt` renders a record with no input, so
    chat inference (pipeline, apply_chat_template) prompts the model in the format it was trained on.

    `bos` is the Jinja expression for what the tokenizer puts before a prompt when training tokenizes it
    with its special tokens (`bos_token`, or '' when it adds none): apply_chat_template tokenizes the
    rendered text without special tokens, so the template writes them itself. An assistant reply after
    the last user message renders as a training example does: prompt, reply, eos.
    """
    preamble = PREAMBLE["no_input"] if style == "alpaca" else ""
    bos_part = f"{{{{- {bos} }}}}\n" if bos else ""
    return (
        "{#- The alpaca prompt this model was trained on. Training was single-turn: only a leading system\n"
        "    message and the LAST user message are shown (earlier turns are left out); an assistant reply\n"
        "    after that user message is rendered as in training: prompt, reply, eos. -#}\n"
        "{%- set ns = namespace(system='', user=none, reply=none) %}\n"
        "{%- for m in messages %}\n"
        "{%- if m['role'] == 'system' and loop.first %}{% set ns.system = m['content'] %}\n"
        "{%- elif m['role'] == 'user' %}{% set ns.user = m['content'] %}{% set ns.reply = none %}\n"
        "{%- elif m['role'] == 'assistant' and ns.user is not none %}{% set ns.reply = m['content'] %}\n"
        "{%- endif %}\n"
        "{%- endfor %}\n"
        "{%- if ns.user is none %}{{ raise_exception('an alpaca prompt needs a user message') }}{% endif %}\n"
        f"{bos_part}"
        "{%- if ns.system %}{{- ns.system + '\\n\\n' }}{% endif %}\n"
        f"{{{{- {literal(preamble + INSTRUCTION)} + ns.user + '\\n\\n' }}}}\n"
        "{%- if add_generation_prompt or ns.reply is not none %}"
        f"{{{{- {literal(RESPONSE)} }}}}{{% endif %}}\n"
        "{%- if ns.reply is not none %}{{- ns.reply + eos_token }}{% endif %}\n"
    )
