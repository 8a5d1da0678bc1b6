"""Two runs starting at once on one fresh sqlite MLflow store both finish with their metrics (before
the store's creation was serialized, one died in MLflow's schema migration: "duplicate column name")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import cli_env

pytestmark = pytest.mark.slow


def test_two_runs_create_one_store_together(tmp_path: Path, quick_overrides) -> None:
    args = [
        *quick_overrides,
        "trainer.max_steps=4",
        "trainer.log_every=1",
        "trainer.val_every=disable",
        "trainer.export_model=false",
    ]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "trainer", *args, f"run.name=r{i}", "trainer.threads=1"],
            cwd=tmp_path,
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in (1, 2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    runs = client.search_runs(client.get_experiment_by_name("default").experiment_id)
    assert sorted(r.info.run_name for r in runs) == ["r1", "r2"]
    assert all("train/loss" in r.data.metrics for r in runs)
