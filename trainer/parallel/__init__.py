"""Parallelism: one module per option of the `parallelism` group, behind one interface (base.py).

    conf/parallelism/single.yaml     SingleDevice  (config/parallelism.py)  base.Parallel
    conf/parallelism/ddp.yaml        DDP                                    ddp.Ddp
    conf/parallelism/fsdp.yaml       FSDP, version: 2 | 1                   fsdp2.Fsdp2 | fsdp1.Fsdp1
    conf/parallelism/deepspeed.yaml  DeepSpeed                              deepspeed.DeepSpeed

`for_config` chooses once, from the validated config; nothing else names a strategy. A new option is a
config class, a YAML file, a module here and one line in `IMPLEMENTATIONS`.
"""

from __future__ import annotations

import importlib

from trainer.config import TrainConfig
from trainer.parallel.base import Parallel

IMPLEMENTATIONS = {
    "single": "trainer.parallel.base:Parallel",
    "ddp": "trainer.parallel.ddp:Ddp",
    "fsdp2": "trainer.parallel.fsdp2:Fsdp2",
    "fsdp1": "trainer.parallel.fsdp1:Fsdp1",
    "deepspeed": "trainer.parallel.deepspeed:DeepSpeed",
}


def option(cfg: TrainConfig) -> str:
    """The row of IMPLEMENTATIONS for `cfg.parallelism`: its strategy, FSDP by version."""
    p = cfg.parallelism
    return f"fsdp{p.version}" if p.strategy == "fsdp" else p.strategy


def for_config(cfg: TrainConfig) -> Parallel:
    """The `Parallel` for `cfg.parallelism` (imported only when chosen); the config rules have already
    rejected what this machine cannot run."""
    module, _, name = IMPLEMENTATIONS[option(cfg)].partition(":")
    return getattr(importlib.import_module(module), name)(cfg)


__all__ = ["IMPLEMENTATIONS", "Parallel", "for_config", "option"]
