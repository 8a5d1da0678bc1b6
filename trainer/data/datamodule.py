"""The LightningDataModule: read, split, encode once (cached); batch packed rows or padded examples."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from trainer.config.data import DataConfig
from trainer.data.encoded import IGNORE
from trainer.data.prepare import DataSummary, prepare_data
from trainer.data.sampler import ShardedEpochSampler


class Collator:
    """Right-pads a list of examples to the longest one; padding is masked out of attention and loss."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(e["input_ids"]) for e in examples)
        ids = torch.full((len(examples), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(examples), width), dtype=torch.long)
        for row, e in enumerate(examples):
            n = len(e["input_ids"])
            ids[row, :n] = torch.as_tensor(e["input_ids"], dtype=torch.long)
            labels[row, :n] = torch.as_tensor(e["labels"], dtype=torch.long)
            mask[row, :n] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


class InstructionDataModule(L.LightningDataModule):
    def __init__(self, cfg: DataConfig, tokenizer: Any, seed: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.seed = cfg.seed_or(seed)
        self.train_set: Sequence[dict[str, Any]] = []  # examples, or packed rows
        self.val_set: Sequence[dict[str, Any]] = []
        self.summary: DataSummary | None = None

    def prepare(self) -> DataSummary:
        """Read and encode everything once; called by the launcher before fit (cheap on the built-in data)."""
        if self.summary is None:
            data = prepare_data(self.cfg, self.tokenizer, self.seed)
            self.train_set, self.val_set, self.summary = data.train, data.val, data.summary
        return self.summary

    def setup(self, stage: str | None = None) -> None:
        self.prepare()

    def _trained_batches(self, epoch: int, batches_per_epoch: int) -> int:
        """Micro batches of `epoch` already trained, from the optimizer step Lightning restored: 0 on a
        fresh epoch, k after resuming a checkpoint taken k batches into it."""
        trainer = self.trainer
        if trainer is None:
            return 0
        accum = trainer.accumulate_grad_batches
        steps_per_epoch = math.ceil(batches_per_epoch / accum)
        into = trainer.global_step - epoch * steps_per_epoch
        return into * accum if 0 < into < steps_per_epoch else 0

    def _loader(self, data: Sequence, batch_size: int, shuffle: bool) -> DataLoader:
        trainer = self.trainer
        sampler = ShardedEpochSampler(
            len(data),
            seed=self.seed,
            batch_size=batch_size,
            shuffle=shuffle,
            rank=trainer.global_rank if trainer is not None else 0,
            world_size=trainer.world_size if trainer is not None else 1,
            drop_last=shuffle,
            position=self._trained_batches if shuffle else None,
        )
        return DataLoader(
            data,
            batch_size=batch_size,
            sampler=sampler,
            drop_last=shuffle,
            collate_fn=self._collator(packed=shuffle and self.cfg.packing),
            num_workers=self.cfg.num_workers,
            pin_memory=self.cfg.pin_memory,
            persistent_workers=self.cfg.persistent_workers,
            prefetch_factor=self.cfg.prefetch_factor,
        )

    def _collator(self, packed: bool) -> Any:
        if packed:
            from trainer.data.packing import PackedCollator

            return PackedCollator(self.tokenizer.pad_token_id)
        return Collator(self.tokenizer.pad_token_id)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.cfg.micro_batch, shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        if not len(self.val_set):
            return []
        return self._loader(self.val_set, self.cfg.eval_batch_size, shuffle=False)
