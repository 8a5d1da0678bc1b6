"""`trainer:` the training loop: length, evaluation, logging, checkpoints, precision (keys in train.yaml)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, NonNegativeInt, PositiveInt, field_validator, model_validator

from trainer.config.base import StrictModel
from trainer.config.period import Period

# What transformers' save_pretrained(max_shard_size=...) parses: whole bytes, or an integer and a unit.
SIZE_PATTERN = re.compile(r"^[0-9]+([KMG]B|[KMG]iB)$")

Precision = Literal["auto", "32", "bf16-mixed", "bf16-true", "16-mixed"]


class LoopConfig(StrictModel):
    max_steps: PositiveInt | None = Field(1200, description="Optimizer steps to run (or set max_epochs).")
    max_epochs: PositiveInt | None = Field(None, description="Epochs to run (or set max_steps).")
    val_every: Period = Field(
        100, description="Validate every N optimizer steps, at last_step only, or disable (never)."
    )
    val_at_start: bool = Field(True, description="Validate once before training, to log the step-0 baseline.")
    log_every: Period = Field(10, description="Log train metrics every N optimizer steps (a period).")
    checkpoint_every: Period = Field(
        300, description="Save a checkpoint every N steps, at last_step, or disable (none)."
    )
    save_last: bool = Field(True, description="Keep checkpoints/last.ckpt pointing at the newest state.")
    keep_last: PositiveInt | None = Field(
        None, description="Keep only the newest N periodic checkpoints; null = keep them all."
    )
    keep_best: NonNegativeInt = Field(
        0, description="Also keep the N best checkpoints by best_metric (saved after validation); 0 = off."
    )
    best_metric: (
        Literal["val/loss", "val/exact_match", "val/rewards/accuracy", "val/rewards/margins"] | None
    ) = Field(
        None,
        description="Metric that ranks checkpoints for keep_best (loss: lower is better); rewards/*: "
        "preference objectives only.",
    )
    save_on_exception: bool = Field(True, description="Save a checkpoint when training raises.")
    precision: Precision = Field(
        "32", description="Numeric precision; auto = bf16-mixed on GPUs that support it, else 32."
    )
    gradient_clip: float | None = Field(
        1.0, gt=0, description="Clip the global grad norm to this max norm; null = off."
    )
    gradient_clip_norm: float = Field(
        2.0, gt=0, description="Norm type for clipping: 2.0 (Euclidean), 1.0, or inf (max abs)."
    )
    deterministic: bool = Field(
        False, description="Use deterministic algorithms only (torch.use_deterministic_algorithms); slower."
    )
    cudnn_benchmark: bool = Field(
        False, description="Let cuDNN pick the fastest kernels per shape (GPU; not with deterministic)."
    )
    threads: PositiveInt | Literal["auto", "torch"] = Field(
        "auto",
        description="Torch CPU threads per process: N; auto = on the CPU, follow the cores other processes "
        "leave free (one process), else torch's choice; torch = one per core, always.",
    )
    progress_bar: bool = Field(
        True, description="Show Lightning's rich progress bar in a terminal (elsewhere: plain step lines)."
    )
    export_model: bool = Field(
        True, description="Write the final model in Hugging Face format to <run>/model."
    )
    export_max_shard_size: int | str = Field(
        "5GB",
        description="Split exported safetensors into files of at most this size: 5GB, 500MB, 2GiB, or bytes.",
    )

    @field_validator("export_max_shard_size")
    @classmethod
    def _shard_size(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value > 0 or isinstance(value, str) and SIZE_PATTERN.match(value):
            return value
        raise ValueError(
            "not a size: use an integer and a unit (KB, MB, GB, KiB, MiB, GiB), e.g. 5GB or 200MB"
        )

    @property
    def best_mode(self) -> str:
        return "min" if self.best_metric == "val/loss" else "max"

    @model_validator(mode="after")
    def _one_length(self) -> LoopConfig:
        if (self.max_steps is None) == (self.max_epochs is None):
            both = "both set" if self.max_steps is not None else "both null"
            raise ValueError(f"max_steps and max_epochs are {both}: set exactly one")
        return self
