"""SIGTERM and Ctrl-C stop a run cleanly: a checkpoint at a step boundary, the MLflow run marked KILLED,
exit status 143 / 130 (not 0: a scheduler must not record a preempted job as a success), and the same
command resumes to the same weights as a run never stopped."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient
from safetensors.torch import load_file

from tests.conftest import cli_env, run_cli

pytestmark = pytest.mark.slow

STEPS = ["trainer.max_steps=30", "trainer.log_every=1", "trainer.val_every=disable", "trainer.threads=1"]


def _stopped(args: list[str], cwd: Path, log: Path, signum: int) -> subprocess.CompletedProcess[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainer", *args], cwd=cwd, env=cli_env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not (log.is_file() and "] step 5/30" in log.read_text()):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-3000:]
        time.sleep(0.2)
    store = f"sqlite:///{log.parent.parent.parent / 'mlflow.db'}"
    run_id = (log.parent / "mlflow_run_id").read_text().strip()
    # Training, after the step-0 baseline validation (which used to end the run as FINISHED).
    assert MlflowClient(tracking_uri=store).get_run(run_id).info.status == "RUNNING"
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_cleanly_and_the_run_resumes(tmp_path: Path, quick_overrides, signum, status) -> None:
    args = [*quick_overrides, *STEPS, "run.name=stopped"]
    run = tmp_path / "outputs" / "default" / "stopped"
    stopped = _stopped(args, tmp_path, run / "train.log", signum)
    assert stopped.returncode == status, stopped.stderr[-3000:]
    name = signal.Signals(signum).name
    assert f"stopped by {name}; the same command resumes at step" in stopped.stdout
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    run_id = (run / "mlflow_run_id").read_text().strip()
    assert client.get_run(run_id).info.status == "KILLED"
    assert not (run / "model").exists()  # nothing exported from a stopped run
    again = run_cli(args, cwd=tmp_path)
    assert again.returncode == 0 and "Resuming from" in again.stderr, again.stderr[-3000:]
    assert client.get_run(run_id).info.status == "FINISHED"  # the same MLflow run, continued
    if signum == signal.SIGTERM:  # exact: the same weights as a run never stopped
        straight = run_cli([*quick_overrides, *STEPS, "run.name=straight"], cwd=tmp_path)
        assert straight.returncode == 0, straight.stderr[-3000:]
        a = load_file(run / "model" / "model.safetensors")
        b = load_file(run.parent / "straight" / "model" / "model.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in b)
