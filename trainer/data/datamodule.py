"""The LightningDataModule: read, split, encode once; batch with dynamic padding."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from trainer.config.data import DataConfig
from trainer.data.alpaca import IGNORE, EncodeStats, encode
from trainer.data.sources import load_records
from trainer.errors import UserError


@dataclass(frozen=True)
class DataSummary:
    train: EncodeStats
    val: EncodeStats | None


class Collator:
    """Right-pads a list of examples to the longest one; padding is masked out of attention and loss."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, examples: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(e["input_ids"]) for e in examples)
        ids = torch.full((len(examples), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(examples), width), dtype=torch.long)
        for row, e in enumerate(examples):
            n = len(e["input_ids"])
            ids[row, :n] = torch.tensor(e["input_ids"])
            labels[row, :n] = torch.tensor(e["labels"])
            mask[row, :n] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


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


class InstructionDataModule(L.LightningDataModule):
    def __init__(self, cfg: DataConfig, tokenizer: Any, seed: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.seed = cfg.seed if cfg.seed is not None else seed
        self.train_set: list[dict[str, list[int]]] = []
        self.val_set: list[dict[str, list[int]]] = []
        self.summary: DataSummary | None = None

    def prepare(self) -> DataSummary:
        """Read and encode everything once; called by the launcher before fit (cheap on the built-in data)."""
        if self.summary is not None:
            return self.summary
        cfg = self.cfg
        records = load_records(cfg.path, key="data.path", split=cfg.split)
        if cfg.max_examples is not None:
            records = records[: cfg.max_examples]
        if cfg.validation_path is not None:
            train_records = records
            val_records = load_records(cfg.validation_path, key="data.validation_path", split="validation")
        else:
            train_records, val_records = split_records(records, cfg, self.seed)
        opts = dict(
            tokenizer=self.tokenizer,
            prompt_style=cfg.prompt,
            sequence_len=cfg.sequence_len,
            train_on_inputs=cfg.train_on_inputs,
            too_long=cfg.too_long,
        )
        self.train_set, train_stats = encode(train_records, key="data.path", **opts)
        val_stats = None
        if val_records:
            val_key = "data.validation_path" if cfg.validation_path else "data.path (validation split)"
            self.val_set, val_stats = encode(val_records, key=val_key, **opts)
        self.summary = DataSummary(train_stats, val_stats)
        return self.summary

    def setup(self, stage: str | None = None) -> None:
        self.prepare()

    def _loader(self, data: list, batch_size: int, shuffle: bool) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(
            data,
            batch_size=batch_size,
            shuffle=shuffle,
            drop_last=shuffle,
            collate_fn=Collator(self.tokenizer.pad_token_id),
            num_workers=self.cfg.num_workers,
            generator=generator if shuffle else None,
            pin_memory=self.cfg.pin_memory,
            persistent_workers=self.cfg.persistent_workers,
            prefetch_factor=self.cfg.prefetch_factor,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.cfg.micro_batch, shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        if not self.val_set:
            return []
        return self._loader(self.val_set, self.cfg.eval_batch_size, shuffle=False)
