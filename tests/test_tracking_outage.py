"""Tracking never stops training: a server that is down at start fails in seconds with one line; one
that goes away mid-run leaves training going, its points kept and sent when it answers again."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import cli_env, free_port, run_cli, start_mlflow_server, stop_server

pytestmark = pytest.mark.slow


def test_a_server_down_at_start_is_one_line_in_seconds(tmp_path: Path, quick_overrides) -> None:
    port = free_port()  # nothing listens there
    started = time.perf_counter()
    uri = f"tracker.uri=http://ann:pw@127.0.0.1:{port}"
    run = run_cli([*quick_overrides, uri, "run.name=x"], cwd=tmp_path)
    seconds = time.perf_counter() - started
    assert run.returncode == 2, run.stderr[-3000:]
    assert f"tracker.uri=http://127.0.0.1:{port}: no tracking server answers (" in run.stderr
    assert "Traceback" not in run.stderr and "pw" not in run.stderr
    print(f"server down at start: refused in {seconds:.1f} s")


def test_a_server_that_goes_away_mid_run_does_not_stop_training(tmp_path: Path, quick_overrides) -> None:
    """Killed at step 5 of 150 and started again on the same store at step 20: the run finishes with every
    train/loss point in the same MLflow run."""
    port = free_port()
    server = start_mlflow_server(tmp_path, port)
    steps = ["trainer.max_steps=150", "trainer.log_every=1", "trainer.val_every=disable", "trainer.threads=1"]
    args = [*quick_overrides, *steps, f"tracker.uri=http://127.0.0.1:{port}", "run.name=outage"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainer", *args], cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    log = tmp_path / "outputs" / "default" / "outage" / "train.log"

    def reach(step: int) -> None:
        deadline = time.monotonic() + 300
        while not (log.is_file() and f"] step {step}/150" in log.read_text()):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-3000:]
            time.sleep(0.1)

    try:
        reach(5)
        stop_server(server, signal.SIGKILL)
        reach(20)  # training went on without the server
        server = start_mlflow_server(tmp_path, port)
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        assert "tracking server unreachable" in err and "could not be sent" not in err
        client = MlflowClient(tracking_uri=f"http://127.0.0.1:{port}")  # asked while it runs
        run_id = (log.parent / "mlflow_run_id").read_text().strip()
        steps_logged = sorted(m.step for m in client.get_metric_history(run_id, "train/loss"))
        assert steps_logged == list(range(1, 151)), steps_logged
        assert client.get_run(run_id).info.status == "FINISHED"
    finally:
        proc.kill()
        stop_server(server)
