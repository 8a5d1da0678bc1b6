"""The LightningDataModule: read, split, encode once (cached); loaders sharded by rank that resume
mid-epoch; packed rows or padded examples as `PreparedData` decides."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import lightning as L
from torch.utils.data import DataLoader

from trainer.config.data import DataConfig
from trainer.data.prepare import PreparedData, prepare_data
from trainer.data.sampler import ShardedEpochSampler


class Indexed(Sequence):
    """Items with their number (`index`, from `offset`): a precomputed reference looks pairs up by it."""

    def __init__(self, items: Sequence[dict[str, Any]], offset: int) -> None:
        self.items, self.offset = items, offset

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:  # type: ignore[override]
        return {**self.items[i], "index": self.offset + i}


class InstructionDataModule(L.LightningDataModule):
    def __init__(self, cfg: DataConfig, tokenizer: Any, seed: int, indexed: bool = False) -> None:
        """`indexed`: batches carry each item's number (training items from 0, validation items after
        them), for an objective that looks up precomputed reference log-probs."""
        super().__init__()
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.seed = cfg.seed_or(seed)
        self.indexed = indexed
        self._prepared: PreparedData | None = None

    def prepare(self) -> PreparedData:
        """Read and encode everything once; called by train() before fit (cheap on the built-in data)."""
        if self._prepared is None:
            self._prepared = prepare_data(self.cfg, self.tokenizer, self.seed)
        return self._prepared

    @property
    def prepared(self) -> PreparedData:
        return self.prepare()

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

    def _loader(self, data: Sequence[Any], batch_size: int, shuffle: bool) -> DataLoader:
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
            collate_fn=self.prepared.collator(self.tokenizer.pad_token_id, train=shuffle),
            num_workers=self.cfg.num_workers,
            pin_memory=self.cfg.pin_memory,
            persistent_workers=self.cfg.persistent_workers,
            prefetch_factor=self.cfg.prefetch_factor,
        )

    def _numbered(self) -> tuple[Sequence[Any], Sequence[Any]]:
        train, val = self.prepared.train_items, self.prepared.val
        if not self.indexed:
            return train, val
        return Indexed(train, 0), Indexed(val, len(train))

    def train_dataloader(self) -> DataLoader:
        return self._loader(self._numbered()[0], self.cfg.micro_batch, shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        val = self._numbered()[1]
        if not len(val):
            return []
        return self._loader(val, self.cfg.eval_batch_size, shuffle=False)

    def every_item(self) -> tuple[Iterator[dict[str, Any]], int]:
        """Every training and validation item in numbered batches, in order, on every rank (a pass that
        all ranks make in step), and how many items there are."""
        train, val = (
            Indexed(self.prepared.train_items, 0),
            Indexed(self.prepared.val, len(self.prepared.train_items)),
        )
        collate = self.prepared.collator(self.tokenizer.pad_token_id, train=False)
        size = self.cfg.eval_batch_size

        def batches() -> Iterator[dict[str, Any]]:
            for items in (train, val):
                for start in range(0, len(items), size):
                    yield collate([items[i] for i in range(start, min(start + size, len(items)))])

        return batches(), len(train) + len(val)
