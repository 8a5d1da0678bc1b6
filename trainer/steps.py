"""How many optimizer steps a run takes: plain arithmetic on the config and the example count.

Standard library only, so the dry run (`trainer.plan`) and the start summary compute it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainer.config import TrainConfig


@dataclass(frozen=True)
class StepPlan:
    total: int
    per_epoch: int
    warmup: int

    @property
    def epochs(self) -> float:
        return self.total / self.per_epoch


def plan_steps(cfg: TrainConfig, n_train: int) -> StepPlan:
    """Full micro batches per rank (the loader drops the last partial one), grouped by accumulation;
    Lightning also steps on a partial accumulation window at the end of an epoch, hence the ceiling.

    `n_train` counts what the loader yields items of: examples, or packed rows with data.packing.
    """
    batches = n_train // (cfg.data.micro_batch * cfg.parallelism.world_size)
    per_epoch = max(1, -(-batches // cfg.grad_accum))
    total = cfg.trainer.max_steps or per_epoch * (cfg.trainer.max_epochs or 1)
    return StepPlan(total=total, per_epoch=per_epoch, warmup=cfg.scheduler.warmup_for(total))
