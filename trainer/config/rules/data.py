"""Rules on the data settings that can be checked before anything is read: local paths exist and have a
type we read, the cache folder is a folder. Problems inside the files (bad JSON, missing fields) are
found when the data is read, with file and line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from trainer.config.paths import SUFFIX_TYPES, looks_local
from trainer.config.problems import Problem
from trainer.config.rules.training import Rule

if TYPE_CHECKING:
    from trainer.config.train import TrainConfig


def _local_paths_exist(cfg: TrainConfig) -> Iterator[Problem]:
    for key, path in cfg.data.paths().items():
        if looks_local(path) and not Path(path).expanduser().exists():
            yield Problem(
                key,
                path,
                "no such file or folder",
                "check the path (a relative path starts where you run the command), or give a hub dataset id",
            )


def _known_file_types(cfg: TrainConfig) -> Iterator[Problem]:
    for group, by_name in cfg.data.groups():
        for name, ds in by_name.items():
            path = Path(ds.path).expanduser()
            if ds.file_type == "auto" and path.is_file() and path.suffix.lower() not in SUFFIX_TYPES:
                yield Problem(
                    f"data.{group}.{name}.path",
                    ds.path,
                    f"cannot tell how to read a {path.suffix or 'extensionless'!s} file",
                    f"use one of {' '.join(SUFFIX_TYPES)}, or set data.{group}.{name}.file_type="
                    "json|jsonl|parquet|csv|text",
                )


def _cache_dir_is_folder(cfg: TrainConfig) -> Problem | None:
    folder = cfg.data.cache_dir
    if cfg.data.cache and folder and Path(folder).expanduser().is_file():
        return Problem(
            "data.cache_dir", folder, "is a file, not a folder", "point it at a folder, or data.cache=false"
        )
    return None


RULES: tuple[Rule, ...] = (_local_paths_exist, _known_file_types, _cache_dir_is_folder)
