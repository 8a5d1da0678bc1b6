"""The training sampler: a seeded permutation per epoch, this rank's shard of it, and resume by position.

Why not torch's RandomSampler + Lightning's DistributedSampler: their order depends on a generator that
advances across epochs (a resumed run would replay epoch 0's order) and on Lightning's own sampler seed,
not `data.seed`. Here the order is a pure function of (seed, epoch, rank), and the position inside an
epoch is derived from the optimizer step that Lightning restores from the checkpoint, so a resumed run
continues with the next unseen batch instead of replaying the start of the epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch.utils.data import Sampler


class ShardedEpochSampler(Sampler[int]):
    def __init__(
        self,
        size: int,
        *,
        seed: int,
        batch_size: int,
        shuffle: bool,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = True,
        position: Callable[[int, int], int] | None = None,
    ) -> None:
        """`position(epoch, batches_per_epoch)` -> micro batches of this epoch already trained (0 when
        not resuming); it is asked each time an epoch's iteration starts."""
        self.size, self.seed, self.batch_size, self.shuffle = size, seed, batch_size, shuffle
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        self.position = position
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch."""
        self.epoch = epoch

    def _shard(self) -> list[int]:
        if self.shuffle:
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        else:
            order = torch.arange(self.size)
        per_rank = self.size // self.world_size if self.drop_last else -(-self.size // self.world_size)
        shard = order[self.rank :: self.world_size].tolist()[:per_rank]
        if self.drop_last:
            shard = shard[: len(shard) // self.batch_size * self.batch_size]
        return shard

    @property
    def batches_per_epoch(self) -> int:
        n = len(self._shard())
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[int]:
        shard = self._shard()
        done = self.position(self.epoch, self.batches_per_epoch) if self.position else 0
        yield from shard[done * self.batch_size :]

    def __len__(self) -> int:
        return len(self._shard())
