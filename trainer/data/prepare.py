"""Read, split and encode the data once, without Lightning: the trainer and the dry run share it.

Kept apart from the LightningDataModule so that `trainer.plan` can count steps from local data without
importing lightning (about 5 s of the start-up).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from trainer.config.data import DataConfig
from trainer.data.alpaca import EncodeStats, encode
from trainer.data.sources import load_records
from trainer.errors import UserError

Example = dict[str, list[int]]


@dataclass(frozen=True)
class DataSummary:
    train: EncodeStats
    val: EncodeStats | None


@dataclass(frozen=True)
class PreparedData:
    train: list[Example]
    val: list[Example]
    summary: DataSummary


def split_records(records: list[dict[str, Any]], cfg: DataConfig, seed: int) -> tuple[list, list]:
    """Hold out val_count or val_fraction examples, chosen by a seeded shuffle (same on every rank)."""
    n_val = cfg.val_count or int(round(cfg.val_fraction * len(records)))
    if n_val == 0:
        return records, []
    if n_val >= len(records):
        key, value = (
            ("data.val_count", cfg.val_count) if cfg.val_count else ("data.val_fraction", cfg.val_fraction)
        )
        raise UserError(
            f"{key}={value} holds out {n_val} of the {len(records)} examples in data.path, "
            "leaving none to train on",
            hint=f"use a smaller {key}, or a separate data.validation_path",
        )
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    val = [records[i] for i in sorted(order[:n_val])]
    train = [records[i] for i in sorted(order[n_val:])]
    return train, val


def prepare_data(cfg: DataConfig, tokenizer: Any, seed: int) -> PreparedData:
    """Read every source, hold out validation, and encode with label masks; `seed` orders the split."""
    records = load_records(cfg.path, key="data.path", split=cfg.split)
    if cfg.max_examples is not None:
        records = records[: cfg.max_examples]
    if cfg.validation_path is not None:
        train_records = records
        val_records = load_records(cfg.validation_path, key="data.validation_path", split="validation")
    else:
        train_records, val_records = split_records(records, cfg, seed)
    opts = dict(
        tokenizer=tokenizer,
        prompt_style=cfg.prompt,
        sequence_len=cfg.sequence_len,
        train_on_inputs=cfg.train_on_inputs,
        too_long=cfg.too_long,
    )
    train, train_stats = encode(train_records, key="data.path", **opts)
    val, val_stats = [], None
    if val_records:
        val_key = "data.validation_path" if cfg.validation_path else "data.path (validation split)"
        val, val_stats = encode(val_records, key=val_key, **opts)
    return PreparedData(train, val, DataSummary(train_stats, val_stats))
