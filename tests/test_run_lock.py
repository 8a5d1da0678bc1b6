"""One run folder, one writer: a second process on a folder that a live process trains is refused with
the other process named, and touches nothing there; a dead process (kill -9) holds nothing."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli
from trainer.training.run_lock import RunFolderBusy, lock_run_folder, release_run_folder

HOLD = (
    "import time; from pathlib import Path; from trainer.training.run_lock import lock_run_folder; "
    "lock_run_folder(Path({!r})); print('held', flush=True); time.sleep(600)"
)


def _holder(folder: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-c", HOLD.format(str(folder))]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_live_holder_is_named_and_a_dead_one_holds_nothing(tmp_path: Path) -> None:
    proc = _holder(tmp_path / "run")
    try:
        who = rf"in use: pid {proc.pid} on {socket.gethostname()} \(since "
        with pytest.raises(RunFolderBusy, match=who):
            lock_run_folder(tmp_path / "run")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    lock_run_folder(tmp_path / "run")  # the kernel dropped the dead process's lock
    release_run_folder()


def test_a_second_trainer_on_a_busy_run_folder_is_refused_and_touches_nothing(
    tmp_path: Path, quick_overrides
) -> None:
    run = tmp_path / "outputs" / "default" / "busy"
    proc = _holder(run)
    (run / "config.yaml").write_text("the live run's config\n")
    try:
        started = time.perf_counter()
        second = run_cli([*quick_overrides, "run.name=busy"], cwd=tmp_path)
        seconds = time.perf_counter() - started
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert second.returncode == 2, second.stderr[-3000:]
    assert f"trainer: error: run folder {run} is in use: pid {proc.pid} on" in second.stderr
    assert "or give this run another run.name" in second.stderr
    assert (run / "config.yaml").read_text() == "the live run's config\n"  # refused before writing
    assert "run failed" not in (run / "train.log").read_text()  # the live run's log says nothing false
    print(f"refused in {seconds:.1f} s")
