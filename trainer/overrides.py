"""Check command-line overrides against conf/ before Hydra composes, so typos get our one-line messages.

Hydra rejects an unknown group option or key too, but with a multi-line report and exit status 1. Here
every override is checked at once: a group option must be a file in conf/<group>/, a key must exist in
the config composed with the chosen groups. Problems are reported like validation problems (exit 2, a
"did you mean" for near misses). Anything this check does not understand is left to Hydra.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from trainer.config.problems import Problem

_MISSING = object()
# Flags that change what is composed: leave those runs to Hydra alone.
_CONFIG_FLAGS = {"--config-name", "-cn", "--config-path", "-cp", "--config-dir", "-cd"}


def _suggest(name: str, options: list[str]) -> str | None:
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    return f"did you mean {close[0]}?" if close else None


def check(args: list[str], conf_dir: Path) -> list[Problem]:
    """Problems in the override arguments of a `trainer` command line (flags are skipped)."""
    if _CONFIG_FLAGS & set(args):
        return []
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        overrides = OverridesParser.create().parse_overrides([a for a in args if not a.startswith("-")])
    except HydraException:
        return []  # a syntax error: Hydra's own message points at the character
    groups = {p.name for p in conf_dir.iterdir() if p.is_dir() and p.name != "hydra"}
    problems: list[Problem] = []
    choices: list[str] = []
    keys = []
    for o in overrides:
        name = o.key_or_group
        if name.startswith("hydra") or o.is_add() or o.is_force_add() or o.is_delete() or o.package:
            continue
        if name in groups:
            options = sorted(p.stem for p in (conf_dir / name).glob("*.yaml"))
            if o.value() is None:  # group=null: no option chosen
                continue
            values = list(o.sweep_string_iterator()) if o.is_sweep_override() else [str(o.value())]
            bad = [v for v in values if v not in options]
            for v in bad:
                problems.append(
                    Problem(name, v, f"unknown option (valid: {', '.join(options)})", _suggest(v, options))
                )
            if not bad and not o.is_sweep_override():
                choices.append(f"{name}={values[0]}")
        else:
            keys.append(o)
    if keys:
        composed = _compose(conf_dir, choices)
        for o in keys:
            if (
                composed is not None
                and OmegaConf.select(composed, o.key_or_group, default=_MISSING) is _MISSING
            ):
                problems.append(_unknown_key(composed, o.key_or_group, o.input_line, conf_dir))
    return problems


def _compose(conf_dir: Path, choices: list[str]) -> DictConfig | None:
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            return compose(config_name="train", overrides=choices)
    except HydraException:
        return None


def _options_with_key(conf_dir: Path, group: str, leaf: str) -> list[str]:
    """The options of `group` whose file sets `leaf` (a DeepSpeed key typed under parallelism=fsdp)."""
    found = []
    for path in sorted((conf_dir / group).glob("*.yaml")):
        node = OmegaConf.load(path)
        if isinstance(node, DictConfig) and leaf in node:
            found.append(f"{group}={path.stem}")
    return found


def _unknown_key(cfg: DictConfig, key: str, line: str | None, conf_dir: Path) -> Problem:
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    value = (line or "").partition("=")[2]
    owners = _options_with_key(conf_dir, parent, leaf) if (conf_dir / parent).is_dir() and parent else []
    if owners:
        choices = " or ".join(owners)
        return Problem(
            key, value, f"not an option of the chosen {parent}; it belongs to {choices}", f"add {choices}"
        )
    if isinstance(node, DictConfig):
        options = sorted(str(k) for k in node.keys())
        where = f" under {parent}" if parent else ""
        return Problem(
            key, value, f"unknown key (valid{where}: {', '.join(options)})", _suggest(leaf, options)
        )
    return Problem(key, value, f"unknown key: {parent or key} has no sub-keys", "check the spelling")
