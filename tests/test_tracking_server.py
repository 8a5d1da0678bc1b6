"""A real `mlflow server` on 127.0.0.1: a training run logs to it over HTTP and is read back."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow.tracking import MlflowClient
from transformers import AutoModelForCausalLM

from tests.conftest import ROOT, run_cli

pytestmark = pytest.mark.slow


def test_run_logs_to_a_real_mlflow_server(tmp_path: Path, mlflow_server: str, quick_overrides) -> None:
    served = [
        f"tracker.uri={mlflow_server}", "tracker.system_metrics_every_s=1", "tracker.register_as=tiny-tasks",
        "run.name=served",
    ]  # fmt: skip
    proc = run_cli([*quick_overrides, *served], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    client = MlflowClient(tracking_uri=mlflow_server)
    (run,) = client.search_runs([client.get_experiment_by_name("default").experiment_id])
    assert run.info.run_name == "served" and run.info.status == "FINISHED"
    assert run.data.params["data.global_batch"] == "32"
    assert len(client.get_metric_history(run.info.run_id, "train/loss")) >= 1
    assert "config.yaml" in {a.path for a in client.list_artifacts(run.info.run_id)}
    assert not (tmp_path / "outputs" / "mlflow.db").exists()  # nothing went to the default sqlite store
    # The data as MLflow dataset inputs: source, the data key as digest, counts as the profile.
    logged = client.get_run(run.info.run_id).inputs.dataset_inputs
    inputs = {i.tags[0].value: i.dataset for i in logged}
    assert sorted(inputs) == ["eval", "train"]
    assert (inputs["train"].name, inputs["eval"].name) == ("tiny_tasks", "tiny_tasks/validation")
    train = inputs["train"]
    assert json.loads(train.source)["uri"].endswith("tiny_tasks/train.json") and len(train.digest) == 16
    assert json.loads(train.profile)["num_rows"] == int(run.data.params["data/train/tiny_tasks/kept"])
    # MLflow's own system metrics, sampled every second while the run trained.
    cpu = client.get_metric_history(run.info.run_id, "system/cpu_utilization_percentage")
    assert len(cpu) >= 2 and all(0 <= m.value <= 100 * os.cpu_count() for m in cpu), cpu
    # The model: a logged model of the run, registered, loadable with plain transformers.
    (version,) = client.search_model_versions("name='tiny-tasks'")
    assert version.run_id == run.info.run_id and f"models:/tiny-tasks/{version.version}" in proc.stdout
    (model,) = client.search_logged_models(experiment_ids=[run.info.experiment_id])
    assert model.source_run_id == run.info.run_id and version.source == f"models:/{model.model_id}"
    where = model.artifact_location  # the logged model's own artifacts: the exported folder
    folder = mlflow.artifacts.download_artifacts(artifact_uri=where, tracking_uri=mlflow_server)
    loaded = AutoModelForCausalLM.from_pretrained(folder).state_dict()
    exported = AutoModelForCausalLM.from_pretrained(tmp_path / "outputs" / "default" / "served" / "model")
    assert all(torch.equal(loaded[k], v) for k, v in exported.state_dict().items())
    # Params are the training config; the machine's facts and the command are tags.
    params, tags = run.data.params, run.data.tags
    assert not [k for k in params if k.startswith(("hardware.", "infer."))], sorted(params)
    assert tags["hardware.cpu_cores"] == str(len(os.sched_getaffinity(0)))
    assert tags["host"] == socket.gethostname()
    assert tags["command"].startswith("python -m trainer ") and "run.name=served" in tags["command"]
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if commit.returncode == 0:  # a checkout (not an installed copy elsewhere)
        assert tags["mlflow.source.git.commit"] == commit.stdout.strip()
