"""A real `mlflow server` on 127.0.0.1: a training run logs to it over HTTP and is read back."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import run_cli

pytestmark = pytest.mark.slow


def test_run_logs_to_a_real_mlflow_server(tmp_path: Path, mlflow_server: str, quick_overrides) -> None:
    proc = run_cli([*quick_overrides, f"tracker.uri={mlflow_server}", "run.name=served"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    client = MlflowClient(tracking_uri=mlflow_server)
    (run,) = client.search_runs([client.get_experiment_by_name("default").experiment_id])
    assert run.info.run_name == "served" and run.info.status == "FINISHED"
    assert run.data.params["data.global_batch"] == "32"
    assert len(client.get_metric_history(run.info.run_id, "train/loss")) >= 1
    assert "config.yaml" in {a.path for a in client.list_artifacts(run.info.run_id)}
    assert not (tmp_path / "outputs" / "mlflow.db").exists()  # nothing went to the default sqlite store
