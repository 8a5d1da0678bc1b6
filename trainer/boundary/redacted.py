"""Hydra's own records of a run hold the command line as typed, passwords in URLs included: they are
rewritten with `***` as soon as the run starts, and log records are redacted from then on.

Hydra writes <run>/.hydra/{config,hydra,overrides}.yaml (and a sweep's multirun.yaml) before our code
runs; the rewrite keeps the files (provenance reads overrides.yaml) with the same text, redacted.
"""

from __future__ import annotations

from pathlib import Path

from trainer.config.redact import redact, redact_logs


def redact_file(path: Path) -> None:
    """Rewrite `path` with passwords and secret query values of its URLs as `***`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return
    clean = redact(text)
    if clean != text:
        path.write_text(clean, encoding="utf-8")


def redact_hydra_records(run_dir: Path, sweep_dir: Path | None) -> None:
    """Redact the run's .hydra/ files, the sweep's multirun.yaml, and every log record from now on."""
    redact_logs()
    files = sorted((run_dir / ".hydra").glob("*.yaml"))
    if sweep_dir is not None:
        files.append(sweep_dir / "multirun.yaml")
    for path in files:
        redact_file(path)
