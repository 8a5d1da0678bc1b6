"""How many optimizer steps a run takes: plain arithmetic on the config and the count of loader items.

Derived values live beside the config (standard library only), so `trainer plan`, the start summary and
the training loop compute them the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainer.config.train import TrainConfig


@dataclass(frozen=True)
class StepCount:
    total: int
    per_epoch: int
    warmup: int

    @property
    def epochs(self) -> float:
        return self.total / self.per_epoch


def count_steps(cfg: TrainConfig, n_items: int) -> StepCount:
    """Full micro batches per rank (the loader drops the last partial one), grouped by accumulation;
    Lightning also steps on a partial accumulation window at the end of an epoch, hence the ceiling.

    `n_items` counts what the loader yields: examples, or packed rows with data.packing.
    """
    batches = n_items // (cfg.data.micro_batch * cfg.parallelism.world_size)
    per_epoch = max(1, -(-batches // cfg.grad_accum))
    total = cfg.trainer.max_steps or per_epoch * (cfg.trainer.max_epochs or 1)
    return StepCount(total=total, per_epoch=per_epoch, warmup=cfg.scheduler.warmup_for(total))
