"""kill -9 at chosen moments, then the same command: the run ends with the weights of a run never
killed, bitwise, the same loss curve in the same MLflow run and in metrics.jsonl, and no step stored twice.

The kill points (tests/kill_at.py): after a step between checkpoints (steps are replayed), inside a
checkpoint save (half a file written), inside a validation, and inside the export (the weights written,
the rest not). CPU, deterministic, one thread each: exact equality is the expected result. The runs go
two at a time (two cores, one thread each).
"""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient
from safetensors.torch import load_file

from tests.conftest import ROOT, cli_env
from trainer.training.metrics_file import read_history

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
KILLS = {"step": 6, "save": 4, "val": 2, "export": 0}  # mode -> which step / save / validation


def _run(command: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=900)
    return done, time.perf_counter() - started


def _curve(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def test_killed_anywhere_the_rerun_ends_as_a_run_never_killed(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    trainer = [sys.executable, "-m", "trainer", f"run.output_root={outputs}", *ARGS]
    kill_at = [sys.executable, str(ROOT / "tests" / "kill_at.py")]
    with ThreadPoolExecutor(max_workers=2) as pool:
        straight = pool.submit(_run, [*trainer, "run.name=straight"], tmp_path)
        args = trainer[3:]  # the command line after `python -m trainer`
        killed = {
            mode: pool.submit(_run, [*kill_at, mode, str(n), *args, f"run.name=killed-{mode}"], tmp_path)
            for mode, n in KILLS.items()
        }
        done, _ = straight.result()
        assert done.returncode == 0, done.stderr[-3000:]
        for mode, future in killed.items():
            done, _ = future.result()
            assert done.returncode == -9, f"{mode}: {done.stderr[-3000:]}"
        folders = {mode: outputs / "default" / f"killed-{mode}" for mode in KILLS}
        run_ids = {mode: (folder / "mlflow_run_id").read_text().strip() for mode, folder in folders.items()}
        again = {mode: pool.submit(_run, [*trainer, f"run.name=killed-{mode}"], tmp_path) for mode in KILLS}
        reruns = {mode: future.result() for mode, future in again.items()}

    client = MlflowClient(tracking_uri=f"sqlite:///{outputs / 'mlflow.db'}")
    reference = load_file(outputs / "default" / "straight" / "model" / "model.safetensors")
    straight_id = (outputs / "default" / "straight" / "mlflow_run_id").read_text().strip()
    for mode, (done, seconds) in reruns.items():
        assert done.returncode == 0, f"{mode}: {done.stderr[-3000:]}"
        run = folders[mode]
        resumes = done.stderr.count("Resuming from")
        print(f"kill -9 at {mode} {KILLS[mode]}: rerun {seconds:.1f} s, {resumes} resume")
        weights = load_file(run / "model" / "model.safetensors")
        assert weights.keys() == reference.keys(), mode
        assert all(torch.equal(weights[k], reference[k]) for k in reference), f"weights differ after {mode}"
        assert (run / "mlflow_run_id").read_text().strip() == run_ids[mode], mode  # the same MLflow run
        history = read_history(run)  # the run folder's own metrics.jsonl: what was logged before the kill too
        for key in ("train/loss", "val/loss"):  # once per step, the same values
            assert _curve(client, run_ids[mode], key) == _curve(client, straight_id, key), (mode, key)
            assert history[key] == _curve(client, straight_id, key), (mode, key)
        assert client.get_run(run_ids[mode]).info.status == "FINISHED", mode
        assert not list(run.glob("checkpoints/*.partial*")), mode  # a killed save's leftovers are swept
