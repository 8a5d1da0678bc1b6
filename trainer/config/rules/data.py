"""Rules on the data settings that can be checked before anything is read: local paths exist and have a
type we read, the cache folder is a folder, the datasets are of one kind (supervised, preference or
KTO) and settings that only make sense for supervised data are not set on the others. Problems inside
the files (bad JSON, missing fields) are found when the data is read, with file and line."""

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


def _one_kind(cfg: TrainConfig) -> Problem | None:
    """A run trains one objective: supervised text, preference pairs or KTO examples have different
    batches and losses, so a mix of them (validation included) cannot be trained or evaluated together."""
    kinds = cfg.data.kinds()
    first_key, first = next(iter(kinds.items()))
    for key, kind in kinds.items():
        if kind != first:
            return Problem(
                f"{key}.format.type",
                _format_type(cfg, key),
                f"is {kind} data, but {first_key} is {first} data; all training and validation datasets of "
                "a run must be of one kind (supervised formats, preference, or kto)",
                f"give {key} a {first} format, or train the two kinds in separate runs",
            )
    return None


def _format_type(cfg: TrainConfig, key: str) -> str:
    _, group, name = key.split(".")
    return dict(cfg.data.groups())[group][name].format.type


def _supervised_only(cfg: TrainConfig) -> Iterator[Problem]:
    """Packing and training on prompts are supervised-data settings: preference losses compare whole
    responses of one prompt (a pair's two halves, a KTO example and its KL row), so rows cannot mix
    examples, and prompts are never trained."""
    kind = cfg.data.kind
    if kind == "sft":
        return
    if cfg.data.packing:
        yield Problem(
            "data.packing",
            True,
            f"packing is not supported with {kind} data (each batch row must be one whole sequence)",
            "set data.packing=false",
        )
    if cfg.data.train_on_inputs:
        yield Problem(
            "data.train_on_inputs",
            True,
            f"does not apply to {kind} data: preference losses score only the responses, never the prompt",
            "set data.train_on_inputs=false",
        )


RULES: tuple[Rule, ...] = (
    _local_paths_exist,
    _known_file_types,
    _cache_dir_is_folder,
    _one_kind,
    _supervised_only,
)
