"""`data:` what to train on and how batches are formed (mirrors conf/data/)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, NonNegativeInt, PositiveInt, model_validator

from trainer.config.base import StrictModel
from trainer.config.dataset import DataKind, DatasetConfig, format_kind


class DataConfig(StrictModel):
    datasets: dict[str, DatasetConfig] = Field(
        min_length=1,
        description="Training datasets by name, mixed into one set; each has its own path and format.",
    )
    validation: dict[str, DatasetConfig] | None = Field(
        None, description="Separate validation datasets by name; null = none (or a held-out part)."
    )
    val_fraction: float = Field(
        0.0, ge=0, lt=1, description="Hold out this fraction of the training mix for validation."
    )
    val_count: NonNegativeInt = Field(0, description="Or hold out this many examples (not both).")
    chat_template: Literal["auto", "chatml", "llama3"] = Field(
        "auto",
        description="auto: the tokenizer's chat template; or one the project ships "
        "(trainer/assets/chat_templates).",
    )
    train_on_inputs: bool = Field(
        False, description="Train on every token; default: responses / trained roles only."
    )
    sequence_len: PositiveInt = Field(512, description="Longest tokenized example or packed row.")
    too_long: Literal["drop", "truncate", "error"] = Field(
        "drop", description="What to do with an example longer than sequence_len."
    )
    max_dropped_fraction: float = Field(
        0.9,
        ge=0,
        le=1,
        description="Stop before training when a dataset drops more than this fraction of its records "
        "(more than half is a warning); 1.0 = never stop.",
    )
    packing: bool = Field(
        False, description="Pack examples into rows of sequence_len; attention stays within each example."
    )
    cache: bool = Field(
        True, description="Cache the tokenized data on disk, keyed by everything it depends on."
    )
    cache_dir: str | None = Field(
        None, description="Where the cache lives; null = $TRAINER_CACHE_DIR or ~/.cache/trainer/data."
    )
    num_proc: PositiveInt | None = Field(
        None, description="Tokenizer processes; null = as many as pay off (large data, several cores)."
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
    overfit_batches: NonNegativeInt = Field(
        0,
        description="Debugging: train on the first N global batches only and validate on them (loss should "
        "fall toward 0); 0 = off. See debug=overfit.",
    )

    @model_validator(mode="after")
    def _one_validation_source(self) -> DataConfig:
        given = [
            name
            for name, on in (
                ("validation", bool(self.validation)),
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
        """Whether there is data to validate on: a validation set, or the overfitted batches."""
        return (
            bool(self.validation) or self.val_fraction > 0 or self.val_count > 0 or self.overfit_batches > 0
        )

    def groups(self) -> tuple[tuple[str, dict[str, DatasetConfig]], ...]:
        """("datasets", ...) and ("validation", ...): the config key under data and its entries."""
        return (("datasets", self.datasets), ("validation", self.validation or {}))

    def paths(self) -> dict[str, str]:
        """Config key -> path of every dataset, training and validation."""
        return {
            f"data.{group}.{name}.path": ds.path
            for group, by_name in self.groups()
            for name, ds in by_name.items()
        }

    @property
    def kind(self) -> DataKind:
        """What the run trains on: supervised text (`sft`), preference pairs or KTO examples, by the first
        training dataset's format (a rule requires every dataset to be of the same kind)."""
        return format_kind(next(iter(self.datasets.values())).format)

    def kinds(self) -> dict[str, DataKind]:
        """Config key (`data.datasets.x`) -> the kind of that dataset, training and validation."""
        return {
            f"data.{group}.{name}": format_kind(ds.format)
            for group, by_name in self.groups()
            for name, ds in by_name.items()
        }

    def seed_or(self, run_seed: int) -> int:
        """The seed of the split and the shuffle: `data.seed`, or the run's seed when it is null."""
        return self.seed if self.seed is not None else run_seed

    @property
    def eval_batch_size(self) -> int:
        return self.eval_batch or self.micro_batch
