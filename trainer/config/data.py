"""`data:` what to train on and how batches are formed (mirrors conf/data/)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, NonNegativeInt, PositiveInt, model_validator

from trainer.config.base import StrictModel


class DataConfig(StrictModel):
    path: str = Field(description="Training data: a local .json/.jsonl file, or a hub dataset id.")
    split: str = Field("train", description="Split to read when `path` is a hub dataset id.")
    validation_path: str | None = Field(
        None, description="Separate validation file (or hub id); else a split."
    )
    val_fraction: float = Field(
        0.0, ge=0, lt=1, description="Hold out this fraction of `path` for validation (no validation_path)."
    )
    val_count: NonNegativeInt = Field(0, description="Or hold out this many examples (not both).")
    max_examples: PositiveInt | None = Field(None, description="Use only the first N training examples.")
    format: Literal["alpaca"] = Field("alpaca", description="Record layout: instruction, input, output.")
    prompt: Literal["alpaca", "alpaca_short"] = Field(
        "alpaca", description="Prompt template: the original Alpaca preamble, or headers only."
    )
    train_on_inputs: bool = Field(False, description="Also train on prompt tokens (default: response only).")
    sequence_len: PositiveInt = Field(512, description="Longest tokenized example (prompt + response + EOS).")
    too_long: Literal["drop", "truncate", "error"] = Field(
        "drop", description="What to do with an example longer than sequence_len."
    )
    global_batch: PositiveInt = Field(32, description="Examples per optimizer step, over all ranks.")
    micro_batch: PositiveInt = Field(32, description="Examples per forward pass on one rank.")
    eval_batch: PositiveInt | None = Field(
        None, description="Examples per validation batch; null = micro_batch."
    )
    num_workers: NonNegativeInt = Field(0, description="DataLoader worker processes.")
    pin_memory: bool = Field(False, description="Pin host memory for faster copies to the GPU.")
    persistent_workers: bool = Field(
        False, description="Keep workers alive between epochs (num_workers > 0)."
    )
    prefetch_factor: PositiveInt | None = Field(
        None, description="Batches each worker loads ahead (num_workers > 0); null = PyTorch's default."
    )
    seed: int | None = Field(None, description="Shuffle seed; null = run.seed.")

    @model_validator(mode="after")
    def _one_validation_source(self) -> DataConfig:
        given = [
            name
            for name, on in (
                ("validation_path", self.validation_path is not None),
                ("val_fraction", self.val_fraction > 0),
                ("val_count", self.val_count > 0),
            )
            if on
        ]
        if len(given) > 1:
            raise ValueError(f"{' and '.join(given)} are both set: choose one way to get validation data")
        return self

    @property
    def has_validation(self) -> bool:
        return self.validation_path is not None or self.val_fraction > 0 or self.val_count > 0

    def seed_or(self, run_seed: int) -> int:
        """The seed of the split and the shuffle: `data.seed`, or the run's seed when it is null."""
        return self.seed if self.seed is not None else run_seed

    @property
    def eval_batch_size(self) -> int:
        return self.eval_batch or self.micro_batch
