"""Folders a run writes into, probed before the work that fills them.

A read-only or impossible folder otherwise shows up late or badly: the run folder as a raw traceback
from Hydra's mkdir, the data cache only once every example has been tokenized. The probe is what those
writes will do, done first: create the folder (with its parents) and write and delete a small file.
Standard library only, so the boundary can probe before anything heavy loads.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from trainer.errors import UserError


def _reason(err: OSError) -> str:
    return err.strerror or str(err)


def probe(folder: Path) -> tuple[str, str] | None:
    """None when `folder` can be created and written in; else what failed and the OS's reason."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        return "cannot create", _reason(err)
    try:
        fd, name = tempfile.mkstemp(prefix=".write-probe-", dir=folder)
        try:
            os.write(fd, b"probe")
        finally:
            os.close(fd)
            os.unlink(name)
    except OSError as err:
        return "cannot write in", _reason(err)
    return None


def require_writable(folder: Path, key: str, value: object, what: str, fix: str) -> None:
    """UserError naming config key `key` (set to `value`) when `folder`, the `what`, cannot be written."""
    failed = probe(folder)
    if failed is not None:
        raise UserError(f"{key}={value}: {failed[0]} the {what} {folder} ({failed[1]})", hint=fix)


def require_run_folder(run_dir: Path, output_root: str, what: str = "run folder") -> None:
    """The run (or sweep) folder; named by `run.output_root` when it lies under it, as it does unless
    hydra.run.dir / hydra.sweep.dir were set apart from it."""
    root = Path(output_root).expanduser().absolute()
    if run_dir.absolute().is_relative_to(root):
        key, value = "run.output_root", output_root
        fix = "point run.output_root at a folder you can write (run.output_root=DIR)"
    else:
        key, value = ("hydra.sweep.dir" if what == "sweep folder" else "hydra.run.dir"), run_dir
        fix = f"point {key} at a folder you can write, or leave it to follow run.output_root"
    require_writable(run_dir, key, value, what, fix)
