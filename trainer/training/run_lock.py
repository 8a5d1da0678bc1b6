"""One run folder, one writer: a lock held by the process training it.

Why: two processes started with the same `run.name` both trained into one folder, interleaving
checkpoints as `-v1` files and forking the MLflow run. The lock is `fcntl.flock` on `<run>/.lock`: the
kernel drops it when the holder dies (kill -9 included), so a dead process never holds it. The file
says who holds it (pid, host, since when) so the refusal names the other process. Only rank 0 takes
it: the other ranks of a distributed run write into the same folder by design.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import IO

from trainer.errors import UserError

LOCK_FILE = ".lock"


class RunFolderBusy(UserError):
    """Another live process trains this run folder: its files are not this process's to touch."""


_held: list[IO[str]] = []  # open for the life of the process: closing the file would release the lock


def _holder(text: str) -> str:
    try:
        who = json.loads(text)
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(who["since"]))
        return f"pid {who['pid']} on {who['host']} (since {since})"
    except (ValueError, KeyError, TypeError):
        return "another process"


def lock_run_folder(run_dir: Path) -> None:
    """Hold `<run>/.lock` for this process's lifetime, or refuse naming the process that holds it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    f = open(run_dir / LOCK_FILE, "a+")  # noqa: SIM115 - held open on purpose
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        who = _holder(f.read())
        f.close()
        raise RunFolderBusy(
            f"run folder {run_dir} is in use: {who} is training it",
            hint="wait for it to finish or stop it (kill -INT <pid> checkpoints first), "
            "or give this run another run.name",
        ) from None
    f.seek(0)
    f.truncate()
    f.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}))
    f.flush()
    _held.append(f)


def release_run_folder() -> None:
    """Let the folder go (the end of a run inside a longer-lived process, e.g. a test or a sweep)."""
    while _held:
        f = _held.pop()
        fcntl.flock(f, fcntl.LOCK_UN)
        f.close()
