"""One dataset of `data.datasets` / `data.validation`: where it is read from and its record format.

The format is a tagged union on `type`, so each layout carries only its own options (a `roles` key
under an alpaca dataset is a mistake, not something silently ignored). Field names are configurable
because the same layout ships under different column names.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PositiveFloat, PositiveInt, field_validator, model_validator

from trainer.config.base import StrictModel

# Roles a message can have once a record is read; ShareGPT names are mapped onto these.
ROLES = ("system", "user", "assistant", "tool")
# What a ShareGPT `from` value may map to: a role, or `tool_call` (an assistant message whose value is a
# JSON {"name", "arguments"} call).
SHAREGPT_TARGETS = (*ROLES, "tool_call")
DEFAULT_ROLE_MAP = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "function_call": "tool_call",
    "observation": "tool",
    "tool": "tool",
}


class AlpacaFormat(StrictModel):
    type: Literal["alpaca"] = Field(
        "alpaca", description="Instruction, optional input and system, and the output to learn."
    )
    template: Literal["alpaca", "alpaca_short", "chat"] = Field(
        "alpaca",
        description="alpaca: the original preamble; alpaca_short: headers only; chat: as system/user/"
        "assistant messages through the chat template.",
    )
    instruction: str = Field("instruction", description="Field holding the instruction.")
    input: str = Field("input", description="Field holding the optional input.")
    output: str = Field("output", description="Field holding the response to learn.")
    system: str = Field("system", description="Field holding an optional system prompt.")


class ChatFormat(StrictModel):
    type: Literal["chat"] = Field(
        "chat", description="Conversations: OpenAI `messages` or ShareGPT `conversations`, with tools."
    )
    field: str = Field("messages", description="Field holding the list of messages.")
    style: Literal["auto", "openai", "sharegpt"] = Field(
        "auto",
        description="openai: {role, content, tool_calls}; sharegpt: {from, value}; auto: by the keys.",
    )
    role_map: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_ROLE_MAP),
        description="ShareGPT `from` value -> system|user|assistant|tool|tool_call.",
    )
    tools_field: str = Field("tools", description="Field with the tool definitions (a list or JSON text).")
    roles: list[Literal["system", "user", "assistant", "tool"]] = Field(
        default_factory=lambda: ["assistant"],
        description="Roles whose messages are trained (end-of-turn included); data.train_on_inputs: all.",
    )

    @field_validator("roles")
    @classmethod
    def _some_role_trained(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError(
                "no role is trained, so nothing would be learned; list at least one of "
                "system, user, assistant, tool (or set data.train_on_inputs=true)"
            )
        return value

    @field_validator("role_map")
    @classmethod
    def _known_targets(cls, value: dict[str, str]) -> dict[str, str]:
        bad = sorted({v for v in value.values() if v not in SHAREGPT_TARGETS})
        if bad:
            allowed = ", ".join(SHAREGPT_TARGETS)
            raise ValueError(f"maps to {', '.join(bad)}; each value must be one of {allowed}")
        return value


class CompletionFormat(StrictModel):
    type: Literal["completion"] = Field(
        "completion", description="Raw text, all trained; longer texts are split into sequence_len chunks."
    )
    field: str = Field("text", description="Field holding the text (.txt files: the whole file).")


class InputOutputFormat(StrictModel):
    type: Literal["input_output"] = Field(
        "input_output", description="Text segments, each with its own train / no-train flag."
    )
    field: str = Field("segments", description="Field holding the list of segments.")
    text: str = Field("text", description="Key of a segment's text.")
    label: str = Field("label", description="Key of a segment's flag: true = trained.")


class PretokenizedFormat(StrictModel):
    type: Literal["pretokenized"] = Field(
        "pretokenized", description="Token ids as they are (+ labels, -100 = not trained)."
    )
    input_ids: str = Field("input_ids", description="Field holding the token ids.")
    labels: str | None = Field("labels", description="Field holding the labels; absent = all trained.")


class PromptedFormat(StrictModel):
    """What the two preference layouts share: a prompt (with optional input and system) rendered by one
    template, followed by the responses they judge. Not a format of its own."""

    type: str = Field(description="The format.")
    template: Literal["none", "alpaca", "alpaca_short", "chat"] = Field(
        "chat",
        description="none: prompt text then response (no template; input and system unused); alpaca / "
        "alpaca_short: the prompt as an alpaca instruction; chat: user/assistant messages.",
    )
    prompt: str | None = Field(
        "prompt",
        description="Field holding the prompt (text, or messages with template chat); null = no such field: "
        "the messages before a response given as a list, or the common start of chosen and rejected "
        "(Anthropic HH).",
    )
    input: str = Field("input", description="Field holding the optional alpaca input.")
    system: str = Field("system", description="Field holding an optional system prompt.")


class PreferenceFormat(PromptedFormat):
    type: Literal["preference"] = Field(
        "preference", description="Pairs: a prompt, a chosen and a rejected response (DPO, ORPO, SimPO)."
    )
    chosen: str = Field(
        "chosen",
        description="Field holding the preferred response (text, or messages: the last assistant's).",
    )
    rejected: str = Field("rejected", description="Field holding the dispreferred response (same shape).")


class KtoFormat(PromptedFormat):
    type: Literal["kto"] = Field(
        "kto", description="Unpaired examples: a prompt, a completion and whether it is desirable (KTO)."
    )
    completion: str = Field(
        "completion", description="Field holding the completion (text, or messages: the last assistant's)."
    )
    label: str = Field("label", description="Field holding true (desirable) or false (undesirable).")


Format = Annotated[
    AlpacaFormat
    | ChatFormat
    | CompletionFormat
    | InputOutputFormat
    | PretokenizedFormat
    | PreferenceFormat
    | KtoFormat,
    Field(discriminator="type"),
]
# What a run trains on, by the formats of its datasets: one kind per run (a rule checks).
DataKind = Literal["sft", "preference", "kto"]


def format_kind(fmt: StrictModel) -> DataKind:
    """preference and kto records feed their own objectives; every other format is supervised text."""
    if isinstance(fmt, PreferenceFormat):
        return "preference"
    if isinstance(fmt, KtoFormat):
        return "kto"
    return "sft"


class DatasetConfig(StrictModel):
    path: str = Field(
        description="A local file (.json .jsonl .parquet .csv .txt), a folder of them or of a "
        "`save_to_disk` dataset, or a hub dataset id."
    )
    format: Format = Field(default_factory=AlpacaFormat, description="The record layout (by `type`).")
    split: str = Field("train", description="Split of a hub dataset or of a saved DatasetDict.")
    revision: str | None = Field(None, description="Hub dataset revision (branch, tag or commit).")
    file_type: Literal["auto", "json", "jsonl", "parquet", "csv", "text"] = Field(
        "auto", description="How to read local files; auto = by extension."
    )
    weight: PositiveFloat | None = Field(
        None,
        description="Size multiplier in the mix: 0.5 = a seeded half, 2 = every example twice.",
    )
    count: PositiveInt | None = Field(
        None, description="Take exactly this many examples (seeded; repeats when more than there are)."
    )

    @model_validator(mode="after")
    def _weight_or_count(self) -> DatasetConfig:
        if self.weight is not None and self.count is not None:
            raise ValueError("weight and count are both set: choose one way to size this dataset")
        return self
