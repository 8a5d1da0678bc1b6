"""Rules on where the model and tokenizer come from: a `model.name_or_path` that nothing would read, and
local paths that are not there (said now, not after a hub lookup that suggests downloading them).

Training only: a trained run's config is checked again before its model is used (rules/__init__.py),
maybe on another machine, where its `model/` folder replaces these sources and they need not exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from trainer.config.paths import LOCAL_PATH_FIX, missing_local
from trainer.config.problems import Problem
from trainer.config.rules.training import Rule

if TYPE_CHECKING:
    from trainer.config.train import TrainConfig

PRETRAINED_PRESET = "llama3_2_1b"  # the example of a preset that loads weights, in the fix below


def _name_or_path_is_used(cfg: TrainConfig) -> Problem | None:
    """With from_scratch and an architecture, name_or_path is read only as the tokenizer's fallback: with
    `model.tokenizer` set too (as `model=tiny` does) nothing reads it, and the run would train the built-in
    random model while the user believes it uses theirs."""
    m = cfg.model
    if not (m.built_from_architecture and m.name_or_path and m.tokenizer):
        return None
    return Problem(
        "model.name_or_path",
        m.name_or_path,
        "not used: the model is built from model.architecture with random weights (model.from_scratch=true) "
        "and the tokenizer is model.tokenizer",
        f"to fine-tune its weights use a preset that loads them (model={PRETRAINED_PRESET} "
        f"model.name_or_path={m.name_or_path}); for random init from its config.json set "
        "model.architecture=null; or remove model.name_or_path",
    )


def _local_sources_exist(cfg: TrainConfig) -> Iterator[Problem]:
    m = cfg.model
    for key, source in (("model.name_or_path", m.name_or_path), ("model.tokenizer", m.tokenizer)):
        if source and missing_local(source):
            yield Problem(key, source, "no such folder", LOCAL_PATH_FIX)


RULES: tuple[Rule, ...] = (_name_or_path_is_used, _local_sources_exist)
