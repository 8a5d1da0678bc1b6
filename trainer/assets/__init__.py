"""Files the project ships (tokenizer, built-in data), addressed from YAML as `${asset:NAME}`."""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parent


def asset_path(name: str) -> str:
    path = ASSETS / name
    if not path.exists():
        raise FileNotFoundError(f"no built-in asset {name!r} under {ASSETS}")
    return str(path)
