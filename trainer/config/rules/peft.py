"""Rules on `peft:`: what peft would only reject (or silently ignore) once the model is built.

peft reads a string `target_modules` as a regular expression that must match a module's whole dotted
path (`re.fullmatch`), and a list as names that match the path's last parts. So a bad pattern fails
only after data preparation and model loading, and a bare name written as a string (`q_proj`) matches
no layer at all; both are caught here, before anything heavy is imported.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from trainer.config.problems import Problem
from trainer.config.rules.training import Rule

if TYPE_CHECKING:
    from trainer.config.train import TrainConfig

ALL_LINEAR = "all-linear"


def _pattern(cfg: TrainConfig) -> str | None:
    """The regex form of target_modules, or None for none/a list/all-linear."""
    targets = getattr(cfg.peft, "target_modules", None)
    return targets if isinstance(targets, str) and targets != ALL_LINEAR else None


def _target_pattern_compiles(cfg: TrainConfig) -> Problem | None:
    pattern = _pattern(cfg)
    if pattern is None:
        return None
    try:
        re.compile(pattern)
    except re.error as err:
        return Problem(
            "peft.target_modules",
            pattern,
            f"not a valid regular expression ({err})",
            "fix the pattern, or list module names: peft.target_modules=[q_proj,v_proj]",
        )
    return None


def _target_pattern_is_not_a_bare_name(cfg: TrainConfig) -> Problem | None:
    pattern = _pattern(cfg)
    if pattern is None or re.escape(pattern) != pattern:
        return None
    return Problem(
        "peft.target_modules",
        pattern,
        "a string is a regular expression that must match a module's whole path "
        "(model.layers.0.self_attn.q_proj), so a bare name adapts no layer",
        f"use a list: peft.target_modules=[{pattern}], or a pattern: peft.target_modules='.*\\.{pattern}'",
    )


def _merge_needs_the_exported_adapter(cfg: TrainConfig) -> Problem | None:
    if getattr(cfg.peft, "merge", False) and not cfg.trainer.export_model:
        return Problem(
            "peft.merge",
            True,
            "the merged model is made from the exported adapter, and trainer.export_model=false exports none",
            "set trainer.export_model=true, or peft.merge=false",
        )
    return None


RULES: tuple[Rule, ...] = (
    _target_pattern_compiles,
    _target_pattern_is_not_a_bare_name,
    _merge_needs_the_exported_adapter,
)
