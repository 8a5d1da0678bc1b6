"""Provenance written beside every run: how to reproduce it and what produced it (passwords in URLs on
the command line written `***`)."""

from __future__ import annotations

import json
import platform
import socket
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from trainer.config.redact import redact_tree

PACKAGES = (
    "trainer",
    "torch",
    "lightning",
    "transformers",
    "tokenizers",
    "peft",
    "mlflow",
    "hydra-core",
    "omegaconf",
    "pydantic",
    "datasets",
)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=5, cwd=Path(__file__).resolve().parent
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _overrides(run_dir: Path) -> list[str]:
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.exists():
        return []
    import yaml

    return list(yaml.safe_load(path.read_text()) or [])


def collect(run_dir: Path) -> dict[str, Any]:
    status = _git("status", "--porcelain")
    return {
        "argv": sys.argv,
        "command": " ".join(["python -m trainer", *_overrides(run_dir)]),
        "overrides": _overrides(run_dir),
        "cwd": str(Path.cwd()),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "packages": {name: _version(name) for name in PACKAGES},
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write(run_dir: Path) -> Path:
    path = run_dir / "provenance.json"
    path.write_text(json.dumps(redact_tree(collect(run_dir)), indent=2) + "\n")
    return path


def tags(run_dir: Path) -> dict[str, str]:
    """What a tracker shows beside a run's params: the command that made it and the code it ran
    (`mlflow.source.git.commit` is the tag MLflow's UI shows as the run's source version)."""
    found = collect(run_dir)
    tags = {"command": found["command"]}
    if found["git_commit"]:
        tags["mlflow.source.git.commit"] = found["git_commit"]
        tags["git_dirty"] = str(found["git_dirty"]).lower()
    return redact_tree(tags)
