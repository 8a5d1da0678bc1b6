"""Read raw records from a local JSON / JSON Lines file or a hub dataset id.

Local paths are read here with precise errors (file and line); hub ids go through `datasets`, and an
unreachable hub says how to use a local file instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trainer.errors import UserError
from trainer.hub import download_hint, looks_local, require_hub

Record = dict[str, Any]


def load_records(path: str, *, key: str, split: str = "train") -> list[Record]:
    """`key` is the config key the path came from (e.g. data.path), for the error message."""
    if looks_local(path):
        return _read_local(Path(path).expanduser(), key)
    return _read_hub(path, split, key)


def _read_local(path: Path, key: str) -> list[Record]:
    if not path.exists():
        raise UserError(
            f"{key}={path}: file not found", hint="check the path (relative paths start at the cwd)"
        )
    if path.suffix not in {".json", ".jsonl"}:
        raise UserError(
            f"{key}={path}: unsupported file type {path.suffix!r}", hint="use a .json or .jsonl file"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UserError(
            f"{key}={path}: not UTF-8 text (byte {err.start})", hint="re-save the file as UTF-8"
        ) from None
    records = _parse_jsonl(text, path, key) if path.suffix == ".jsonl" else _parse_json(text, path, key)
    if not records:
        raise UserError(f"{key}={path}: the file holds no examples")
    return records


def _parse_json(text: str, path: Path, key: str) -> list[Record]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"{key}={path}:{err.lineno}: invalid JSON ({err.msg})") from None
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise UserError(f"{key}={path}: expected a JSON list of objects", hint="or use JSON Lines (.jsonl)")
    return data


def _parse_jsonl(text: str, path: Path, key: str) -> list[Record]:
    records = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{key}={path}:{lineno}: invalid JSON ({err.msg})") from None
        if not isinstance(row, dict):
            raise UserError(f"{key}={path}:{lineno}: expected a JSON object per line")
        records.append(row)
    return records


def _read_hub(dataset_id: str, split: str, key: str) -> list[Record]:
    require_hub(dataset_id, key)
    import datasets

    try:
        ds = datasets.load_dataset(dataset_id, split=split)
    except Exception as err:  # offline, gated, missing: all end the same way for the user
        raise UserError(
            f"{key}={dataset_id}: could not load this hub dataset ({type(err).__name__}: {_first_line(err)})",
            hint=download_hint(key, dataset_id),
        ) from None
    return [dict(r) for r in ds]


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else ""
