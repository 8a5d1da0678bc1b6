"""kill -9 at chosen moments, then the same command: the run ends with the weights of a run never
killed, bitwise, the same loss curve in the same MLflow run, and no step stored twice.

The kill points (tests/kill_at.py): after a step between checkpoints (steps are replayed), inside a
checkpoint save (half a file written), during a validation, and inside the export (the weights written,
the rest not). CPU, deterministic, one thread: exact equality is the expected result.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient
from safetensors.torch import load_file

from tests.conftest import ROOT, cli_env, run_cli

pytestmark = pytest.mark.slow

ARGS = [
    "trainer.max_steps=12",
    "trainer.val_every=6",
    "trainer.checkpoint_every=4",
    "trainer.log_every=1",
    "trainer.threads=1",
    "trainer.deterministic=true",
    "trainer.progress_bar=false",
    "data.datasets.tiny_tasks.count=600",
]
KILLS = [("step", 6), ("save", 4), ("val", 2), ("export", 0)]


def _curve(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("kill")
    done = run_cli([f"run.output_root={root / 'outputs'}", *ARGS, "run.name=straight"], cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    return root


@pytest.mark.parametrize(("mode", "n"), KILLS)
def test_killed_anywhere_the_rerun_ends_exactly_as_a_run_never_killed(
    reference: Path, mode: str, n: int
) -> None:
    outputs = reference / "outputs"
    args = [f"run.output_root={outputs}", *ARGS, f"run.name=killed-{mode}"]
    killed = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "kill_at.py"), mode, str(n), *args],
        cwd=reference, env=cli_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr[-3000:]
    run = outputs / "default" / f"killed-{mode}"
    run_id = (run / "mlflow_run_id").read_text().strip()
    started = time.perf_counter()
    again = run_cli(args, cwd=reference)
    seconds = time.perf_counter() - started
    assert again.returncode == 0, again.stderr[-3000:]
    print(f"kill -9 at {mode} {n}: rerun {seconds:.1f} s; {again.stderr.count('Resuming from')} resume")
    a = load_file(run / "model" / "model.safetensors")
    b = load_file(outputs / "default" / "straight" / "model" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in b), f"weights differ after {mode}"
    assert (run / "mlflow_run_id").read_text().strip() == run_id  # the same MLflow run continued
    client = MlflowClient(tracking_uri=f"sqlite:///{outputs / 'mlflow.db'}")
    straight = (outputs / "default" / "straight" / "mlflow_run_id").read_text().strip()
    for key in ("train/loss", "val/loss"):
        assert _curve(client, run_id, key) == _curve(client, straight, key), key  # once per step, same values
    assert client.get_run(run_id).info.status == "FINISHED"
    assert not list(run.glob("checkpoints/*.partial-*"))  # a killed save's leftovers are swept
