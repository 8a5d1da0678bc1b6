"""Hydra hooks are refused before Hydra composes anything, unless `TRAINER_ALLOW_HOOKS=1`.

Hydra imports and calls whatever a config names: `hydra.callbacks.<name>._target_` runs at the start of
a run, before our validation sees the config, and any `_target_` is an import path meant to be
instantiated. A command line (`+hydra.callbacks.x._target_=os.system`) or a config folder of one's own
(`--config-dir`, `--config-path`, `hydra.searchpath`) could so run arbitrary code before a single key is
checked. Those are refused here, with the override or the file and key named. The project's own conf/
and the configs Hydra's plugins ship (launchers, sweepers) are trusted: they are code already installed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from trainer.boundary.conf import APP_DIR, CONF_DIR, CommandLine
from trainer.errors import UserError

ALLOW_ENV = "TRAINER_ALLOW_HOOKS"
_PACKAGE = re.compile(r"^#\s*@package\s+(\S+)", re.MULTILINE)


def is_hook(path: str) -> bool:
    """A dotted key that names code for Hydra to run: under hydra.callbacks, or any `_target_`."""
    return path == "hydra.callbacks" or path.startswith("hydra.callbacks.") or "_target_" in path.split(".")


def refuse_hooks(line: CommandLine) -> None:
    """Raise a UserError naming every hook of `line` (overrides, then files), unless hooks are allowed."""
    if os.environ.get(ALLOW_ENV) == "1":
        return
    found = [*_override_hooks(line.overrides), *_file_hooks(_user_dirs(line))]
    if found:
        raise UserError(
            f"{'; '.join(found)}: Hydra hooks (hydra.callbacks, _target_) run arbitrary code before the "
            "config is validated, so they are refused",
            hint=f"remove {'it' if len(found) == 1 else 'them'}, or allow hooks for configs you trust: "
            f"{ALLOW_ENV}=1 trainer ...",
        )


# --- the command line --------------------------------------------------------------------------------


def _override_hooks(overrides: list[str]) -> list[str]:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    found = []
    for text in overrides:
        try:
            (o,) = parser.parse_overrides([text])
        except HydraException:  # a syntax error Hydra will report itself; judge the text as typed
            key, _, value = text.partition("=")
            paths = [key.lstrip("+~").replace("/", "."), *(["_target_"] if "_target_" in value else [])]
        else:
            if o.is_delete():
                continue
            key = o.key_or_group.replace("/", ".")
            paths = [key, *(f"{key}.{p}" for p, _ in _walk(o.value()))]
        if any(is_hook(p) for p in paths):
            found.append(text)
    return found


# --- config folders of one's own ---------------------------------------------------------------------


def _file_dir(entry: str) -> Path | None:
    """A search path entry's folder on disk; None for `pkg://` (an installed package is trusted code)."""
    if entry.startswith("pkg://"):
        return None
    return Path(entry.removeprefix("file://"))


def _searchpath(overrides: list[str]) -> list[str]:
    entries = []
    for o in overrides:
        key, _, value = o.lstrip("+").partition("=")
        if key == "hydra.searchpath":
            entries += [e.strip(" '\"") for e in value.strip("[]").split(",") if e.strip(" '\"")]
    return entries


def _user_dirs(line: CommandLine) -> list[Path]:
    """The folders of the command line's search path that are not the project's conf/."""
    dirs: list[Path | None] = [_file_dir(e) for e in _searchpath(line.overrides)]
    if line.config_dir is not None:
        dirs.append(Path(line.config_dir))
    if line.config_path is not None:  # Hydra reads a relative one from where @hydra.main is declared
        path = _file_dir(line.config_path)
        dirs.append(None if path is None else APP_DIR / path)
    return [d for d in dirs if d is not None and d.resolve() != CONF_DIR]


def _file_hooks(dirs: list[Path]) -> list[str]:
    """`FILE sets KEY` for each YAML file with a hook under `dirs` (and the folders their
    `hydra.searchpath` adds)."""
    import yaml

    found, seen, queue = [], set(), list(dirs)
    while queue:
        folder = queue.pop(0).resolve()
        if folder in seen or folder == CONF_DIR or not folder.is_dir():
            continue
        seen.add(folder)
        for path in sorted([*folder.rglob("*.yaml"), *folder.rglob("*.yml")]):
            try:
                text = path.read_text(encoding="utf-8")
                data = yaml.safe_load(text)
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                continue  # Hydra reports a file it cannot read, if it is ever used
            keys = dict(_walk(data, _package(text, path.parent.relative_to(folder))))
            hook = next((k for k in keys if is_hook(k)), None)  # the first (outermost) names it
            if hook is not None:
                found.append(f"{path} sets {hook}")
            more = keys.get("hydra.searchpath")
            if isinstance(more, list):
                queue += [d for e in more if (d := _file_dir(str(e))) is not None]
    return found


def _package(text: str, group: Path) -> str:
    """Where a config file's keys land: its `# @package` header, else its group (Hydra's default)."""
    header = _PACKAGE.search(text)
    group_path = ".".join(group.parts)
    if header is None:
        return group_path
    package = header.group(1)
    return "" if package == "_global_" else package.replace("_group_", group_path)


def _walk(data: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) for every key of a nested mapping (list items by index), parents first."""
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        path = f"{prefix}.{key}" if prefix else str(key)
        yield path, value
        yield from _walk(value, path)
