"""Cross-field rules: checks that need more than one field or group, run after every field is valid.

Each rule returns the `Problem`s it finds (or None), naming the key to change and how. Rules check; they
never rewrite what the user wrote. They are grouped by concern: training (batches, schedule, periods,
checkpoints), data (paths, file types, cache folder), hardware (what this machine can run), parallel
(strategies and the enclosing Slurm job), launcher (what a Slurm
submission asks for), model (shapes, attention, quantization) and periodic (GC and profiler).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from trainer.config.problems import Problem
from trainer.config.rules import (
    data,
    hardware,
    launcher,
    model,
    objective,
    parallel,
    peft,
    periodic,
    sources,
    training,
)

if TYPE_CHECKING:
    from trainer.config.train import TrainConfig

MODULES = (training, data, objective, periodic, hardware, parallel, launcher, model, sources, peft)
# A run folder's config is checked again before its model is used (trainer generate/evaluate/merge),
# maybe on another machine: by the rules about using the model, not those about how it trained.
INFERENCE_MODULES = (data, model, peft)


def check(cfg: TrainConfig, purpose: str = "training") -> list[Problem]:
    """Every problem the rules find; `purpose="inference"` runs only the rules on using the model."""
    found: list[Problem] = []
    for module in MODULES if purpose == "training" else INFERENCE_MODULES:
        for rule in module.RULES:
            result = rule(cfg)
            if isinstance(result, Problem):
                found.append(result)
            elif isinstance(result, Iterable):
                found.extend(result)
    return found
