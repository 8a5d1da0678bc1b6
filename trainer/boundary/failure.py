"""What a failed run leaves: its error at the end of train.log, and no run folder when nothing ran.

Why: a dozen mistakes left 31 folders under outputs/ with no model (an invalid config still had
Hydra's `.hydra/` and an empty train.log), and the error that ended a run was only on the terminal.
A folder is removed only when it holds nothing but what any start writes (Hydra's files, the log, the
resolved config, provenance, the lock): a checkpoint, a model or a tracker run id keeps it.
"""

from __future__ import annotations

import errno
import logging
import shutil
from pathlib import Path

from trainer.errors import UserError

STARTUP_ONLY = {".hydra", "train.log", "config.yaml", "provenance.json", ".lock"}
HYDRA_ONLY = {".hydra", "train.log"}  # what Hydra writes before the run's own code starts


def is_fresh(run_dir: Path) -> bool:
    """Nothing in the folder yet but Hydra's files: a new run (or one whose earlier starts all failed),
    not a run folder with a history (which is never removed)."""
    return run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= HYDRA_ONLY


def log_failure(text: str) -> None:
    """The error as the last lines of the run's train.log (Hydra's file handler takes the `trainer`
    logger's records; the terminal shows the error once, printed by the caller)."""
    file_handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    record = logging.LogRecord("trainer", logging.ERROR, __file__, 0, "run failed: %s", (text,), None)
    for handler in file_handlers:
        handler.handle(record)


def remove_if_untrained(run_dir: Path | None) -> bool:
    """Delete a run folder that holds only startup files; True when it was removed."""
    if run_dir is None or not run_dir.is_dir():
        return False
    if {p.name for p in run_dir.iterdir()} - STARTUP_ONLY:
        return False
    logging.shutdown()  # close train.log before its folder goes
    shutil.rmtree(run_dir, ignore_errors=True)
    return True


DISK_TROUBLE = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only",
}


def disk_error(err: OSError) -> UserError | None:
    """A full disk, a used-up quota or a read-only file system met while writing: one line naming the
    file, instead of a traceback from deep inside a save (checkpoints are written beside their final
    name and renamed, so the last complete one is still there to resume from)."""
    what = DISK_TROUBLE.get(err.errno or 0)
    if what is None:
        return None
    where = err.filename or "a file of the run"
    folder = Path(where).parent if err.filename else None
    return UserError(
        f"cannot write {where}: {what} ({err.strerror})",
        hint=f"free space in {folder} (or set run.output_root / data.cache_dir elsewhere); "
        "the same command then resumes from the last complete checkpoint",
    )
