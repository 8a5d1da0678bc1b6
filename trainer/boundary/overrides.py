"""Command-line overrides checked against the schema before Hydra composes, and made composable.

Hydra rejects an unknown group option or key too, but with a multi-line report and exit status 1, and
it knows only the keys the chosen YAML files spell out. Here every override is checked at once: a group
option must exist on the config search path (conf/ and the user's `--config-dir`), a key must exist in
the schema (trainer/config/keys.py) for the chosen options. Problems are reported like validation
problems (exit 2, "did you mean" for near misses).

Two rewrites make valid overrides compose: a schema key that the chosen YAML leaves out (a data config
of one's own without `sequence_len`) is passed as `++key=value`, and switching a tagged union on the
command line (`data.datasets.x.format.type=chat`) drops the keys of the old variant that the new one
does not have, as choosing another group option replaces the whole file. Anything this check does not
understand is left to Hydra.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

from trainer.boundary.conf import CONF_DIR, CommandLine
from trainer.config.keys import Lookup, lookup, union_at
from trainer.config.problems import Problem

_MISSING = object()


@dataclass
class Checked:
    """The problems found, and the arguments to hand Hydra when there are none."""

    args: list[str]
    problems: list[Problem] = field(default_factory=list)
    set_keys: list[str] = field(default_factory=list)  # groups and keys the command line sets (not hydra)


def _suggest(name: str, options: list[str]) -> str | None:
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    return f"did you mean {close[0]}?" if close else None


class _Search:
    """Group options and compositions on the config search path (conf/ plus the user's folders)."""

    def __init__(self, line: CommandLine) -> None:
        self.line = line
        self._options: dict[str, list[str]] = {}

    def _loader(self) -> Any:
        from hydra.core.global_hydra import GlobalHydra

        return GlobalHydra.instance().config_loader()

    def groups(self) -> set[str]:
        from hydra.core.object_type import ObjectType

        found = self._loader().get_group_options("", ObjectType.GROUP, overrides=self.line.searchpath)
        return set(found) - {"hydra"}

    def options(self, group: str) -> list[str]:
        if group not in self._options:
            found = self._loader().get_group_options(group, overrides=self.line.searchpath)
            self._options[group] = sorted(found)
        return self._options[group]

    def compose(self, choices: list[str]) -> DictConfig | None:
        from hydra import compose
        from hydra.errors import HydraException

        try:
            return compose(config_name=self.line.config_name, overrides=[*choices, *self.line.searchpath])
        except (HydraException, ValueError):
            return None


def check(line: CommandLine) -> Checked:
    """Problems in the overrides of `line`, and the arguments Hydra should get instead of `line.args`."""
    if not line.valid or line.completion or line.informational:
        return Checked(line.args)
    from hydra import initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(line.overrides)
    except HydraException:
        return Checked(line.args)  # a syntax error: Hydra's own message points at the character
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return _Checker(line, parsed, _Search(line)).run()


class _Checker:
    def __init__(self, line: CommandLine, parsed: list[Any], search: _Search) -> None:
        self.line, self.parsed, self.search = line, parsed, search
        self.problems: list[Problem] = []
        self.replace: dict[str, str] = {}  # override as typed -> as handed to Hydra
        self.deletions: list[str] = []
        self.cli_values: dict[str, str] = {}  # non-sweep key=value overrides, for tags chosen on the CLI

    def run(self) -> Checked:
        try:
            groups = self.search.groups()
        except Exception:  # a bad --config-dir or search path: Hydra reports it with its own words
            return Checked(self.line.args)
        choices, keys = [], []
        for o in self.parsed:
            name = o.key_or_group
            if name.startswith("hydra") or o.is_delete() or o.package or o.is_add() or o.is_force_add():
                continue
            if name in groups:
                choice = self._group(o, name)
                if choice:
                    choices.append(choice)
            else:
                keys.append(o)
                if not o.is_sweep_override():
                    self.cli_values[name] = str(o.value())
        set_keys = [o.key_or_group for o in self.parsed if not o.key_or_group.startswith("hydra")]
        if keys:
            composed = self.search.compose(choices)
            for o in keys:
                self._key(o, composed, groups)
        args = [self.replace.get(a, a) for a in self.line.args] + self.deletions
        return Checked(args, self.problems, set_keys)

    def _group(self, o: Any, group: str) -> str | None:
        """Check `group=option` (every value of a sweep); the choice to compose with, when it is one."""
        if o.value() is None:  # group=null: no option chosen
            return None
        options = self.search.options(group)
        values = list(o.sweep_string_iterator()) if o.is_sweep_override() else [str(o.value())]
        bad = [v for v in values if v not in options]
        for v in bad:
            valid = f"unknown option (valid: {', '.join(options)})"
            self.problems.append(Problem(group, v, valid, _suggest(v, options)))
        return None if bad or o.is_sweep_override() else f"{group}={values[0]}"

    def _key(self, o: Any, composed: DictConfig | None, groups: set[str]) -> None:
        key = o.key_or_group

        def tag_of(path: str, tag_field: str) -> str | None:
            dotted = f"{path}.{tag_field}"
            if dotted in self.cli_values:
                return self.cli_values[dotted]
            value = _select(composed, dotted)
            return None if value is _MISSING or value is None else str(value)

        found = lookup(key, tag_of)
        if not found.found:
            self.problems.append(self._unknown(found, o.input_line or "", groups))
            return
        if composed is None:
            return
        if _select(composed, key) is _MISSING:  # valid, but the chosen YAML leaves it out
            self.replace[o.input_line] = "++" + o.input_line
        if not o.is_sweep_override():
            self._drop_old_variant(key, composed, tag_of)

    def _drop_old_variant(self, key: str, composed: DictConfig, tag_of: Any) -> None:
        """`X.type=chat` where the YAML has an alpaca format at X: delete the alpaca-only keys."""
        parent, _, leaf = key.rpartition(".")
        union = union_at(parent, tag_of) if parent else None
        if union is None or union.tag_field != leaf or union.chosen not in union.variants:
            return
        node = _select(composed, parent)
        if not isinstance(node, DictConfig):
            return
        keep = union.variants[union.chosen]
        for name in node:
            dotted = f"{parent}.{name}"
            if name not in keep and dotted not in self.cli_values:
                self.deletions.append(f"~{dotted}")

    def _unknown(self, found: Lookup, line: str, groups: set[str]) -> Problem:
        key, value = found.key, line.partition("=")[2]
        where = f" under {found.parent}" if found.parent else ""
        union = found.union
        if union is not None and found.owners:
            if union.path in groups:
                owners = self._owner_options(union.path, union.tag_field, found.owners)
                choices = " or ".join(owners)
                return Problem(
                    key,
                    value,
                    f"not an option of the chosen {union.path}; it belongs to {choices}",
                    f"add {choices}",
                )
            field, first, *more = union.tag_field, *found.owners
            also = f" (or {', '.join(more)})" if more else ""
            return Problem(
                key,
                value,
                f"not a key of {field}={union.chosen}; it belongs to {field}={' or '.join(found.owners)}",
                f"set {union.path}.{field}={first}{also}",
            )
        if not found.takes_keys:
            return Problem(key, value, f"unknown key: {found.parent} has no sub-keys", "check the spelling")
        valid = ", ".join(found.valid)
        return Problem(
            key, value, f"unknown key (valid{where}: {valid})", _suggest(found.leaf, list(found.valid))
        )

    def _owner_options(self, group: str, tag_field: str, tags: tuple[str, ...]) -> list[str]:
        """The options of `group` that choose one of `tags` (peft=dora and peft=lora both choose lora)."""
        found = []
        for option in self.search.options(group):
            composed = self.search.compose([f"{group}={option}"])
            if composed is not None and str(_select(composed, f"{group}.{tag_field}")) in tags:
                found.append(f"{group}={option}")
        return found or [f"{group}.{tag_field}={t}" for t in tags]


def _select(cfg: DictConfig | None, key: str) -> Any:
    if cfg is None:
        return _MISSING
    return OmegaConf.select(cfg, key, default=_MISSING, throw_on_resolution_failure=False)
