"""Optimizer with weight-decay groups, and warmup + cosine/linear/constant schedules."""

from __future__ import annotations

import math
from typing import Any

import torch

from trainer.config.optimizer import (
    AdafactorConfig,
    AdamWConfig,
    LionConfig,
    OptimizerConfig,
    SGDConfig,
)
from trainer.config.scheduler import SchedulerConfig


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Decay matrices only: norms and biases (1-D tensors) are not decayed, as is standard for LMs."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(
    model: torch.nn.Module, cfg: OptimizerConfig, on_gpu: bool = False
) -> torch.optim.Optimizer:
    """One optimizer per `optimizer.name`; the rules have already checked CUDA and packages."""
    groups = param_groups(model, cfg.weight_decay)
    if isinstance(cfg, AdamWConfig):
        fused = on_gpu if cfg.fused is None else cfg.fused
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, fused=fused or None)
    if isinstance(cfg, SGDConfig):
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    if isinstance(cfg, AdafactorConfig):
        from transformers.optimization import Adafactor

        return Adafactor(groups, lr=cfg.lr, scale_parameter=False, relative_step=False, warmup_init=False)
    if isinstance(cfg, LionConfig):
        from lion_pytorch import Lion

        return Lion(groups, lr=cfg.lr, betas=tuple(cfg.betas))
    import bitsandbytes as bnb

    return bnb.optim.AdamW8bit(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)


def lr_factor(step: int, cfg: SchedulerConfig, total_steps: int) -> float:
    """Multiplier of the peak lr at `step`: linear warmup, then the chosen decay to min_lr_ratio.

    Kept rather than `transformers.get_scheduler` for two differences: its warmup starts at lr 0, so the
    first optimizer step is wasted (here step 0 already gets 1/(warmup+1) of the peak), and its linear
    schedule decays to 0, with no floor (here both cosine and linear end at `min_lr_ratio`). After warmup
    the cosine shape is the same as its `cosine_with_min_lr`. One pure function, checked step by step in
    tests/test_model.py.
    """
    warmup = cfg.warmup_for(total_steps)
    if step < warmup:
        return (step + 1) / (warmup + 1)
    if cfg.name == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    shape = 0.5 * (1 + math.cos(math.pi * progress)) if cfg.name == "cosine" else 1 - progress
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * shape


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: SchedulerConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, cfg, total_steps))
