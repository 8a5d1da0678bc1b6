"""`infer:` what `trainer generate`, `evaluate` and `merge` read (keys in trainer/conf/train.yaml).

Training ignores this section; it lives in the same composed config so that the three commands take the
same groups and overrides as training and are validated the same way, before anything heavy loads.
Checks that need only these keys are here; what needs the file system or the command (is the source an
adapter? are there prompts?) is checked by the command itself (trainer/inference/).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveFloat, PositiveInt, ValidationInfo, field_validator

from trainer.config.base import StrictModel


class InferConfig(StrictModel):
    source: str | None = Field(
        None,
        description="A run folder (its config.yaml gives the model, data, format and tracker; model/ the "
        "weights), a model or PEFT adapter folder (with this config's data and format), or null = this "
        "config's own model.",
    )
    prompts: list[str] = Field(
        default_factory=list,
        description="generate: plain-text prompts, wrapped as a record of the training format (alpaca: the "
        "instruction; chat: one user message; completion: the text as is).",
    )
    prompt_file: str | None = Field(
        None, description="generate: a JSON/JSONL file of records in the training format (after prompts)."
    )
    max_new_tokens: PositiveInt = Field(
        64, description="generate, chat: most tokens generated per prompt (per reply)."
    )
    do_sample: bool = Field(False, description="generate, chat: sample; false = greedy decoding.")
    temperature: PositiveFloat | None = Field(
        None, description="generate, chat: sampling temperature (do_sample); null = the model's default."
    )
    top_p: float | None = Field(
        None,
        gt=0,
        le=1,
        description="generate, chat: nucleus sampling mass (do_sample); null = the model's default.",
    )
    top_k: PositiveInt | None = Field(
        None,
        description="generate, chat: sample from the k likeliest tokens (do_sample); null = the model's "
        "default.",
    )
    seed: int | None = Field(
        None, description="generate, chat: sampling seed, set before each prompt (reply); null = run.seed."
    )
    stream: bool = Field(
        True,
        description="generate, chat: print tokens as they come (in a terminal; a pipe gets whole "
        "completions).",
    )
    split: Literal["validation", "train"] = Field(
        "validation", description="evaluate: the data split scored (the training mix for train)."
    )
    max_examples: PositiveInt | None = Field(
        None, description="evaluate: score only the first N examples of the split; null = all."
    )
    batch_size: PositiveInt | None = Field(
        None, description="evaluate: examples per forward pass; null = data.eval_batch (or micro_batch)."
    )
    out: str | None = Field(
        None,
        description="merge: output folder; null = <source>/merged, or <run>/model_merged for a run folder.",
    )

    @field_validator("prompts")
    @classmethod
    def _no_empty_prompt(cls, value: list[str]) -> list[str]:
        empty = [i for i, p in enumerate(value) if not p.strip()]
        if empty:
            raise ValueError(f"prompt {empty[0]} is empty; give each prompt some text")
        return value

    @field_validator("temperature", "top_p", "top_k")
    @classmethod
    def _only_when_sampling(cls, value: float | None, info: ValidationInfo) -> float | None:
        """Greedy decoding ignores these, so setting one without do_sample is a mistake, not a no-op."""
        if value is not None and not info.data.get("do_sample", False):
            raise ValueError(
                "has no effect with greedy decoding; "
                f"set infer.do_sample=true, or drop infer.{info.field_name}"
            )
        return value
