"""Every metric at the optimizer step it belongs to (1 for the first step): the loss, learning rate, grad
norm and throughput of step N and the validation right after it all at step N, read back from a real
`mlflow server` and from the run folder's metrics.jsonl, which holds the same points.

Before: train/* went to the tracker at N - 1 (Lightning's count of batches that stepped before), and
with accumulation 2 over an epoch end (37 micro batches an epoch: a partial window) the validation after
step 20 never ran; after a resume from a checkpoint taken at a validation step the train metrics came one
step early (19). `train()` runs in-process: one import of torch and Lightning for all runs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from tests.conftest import load_config
from trainer.models.optim import lr_factor
from trainer.training.metrics_file import read_history
from trainer.training.train import TrainResult, train

pytestmark = pytest.mark.slow

QUICK = [
    "trainer.log_every=10",
    "trainer.val_every=10",
    "trainer.checkpoint_every=disable",  # last.ckpt only
    "trainer.export_model=false",
    "trainer.progress_bar=false",
    "tracker.system_metrics_every_s=null",
    "data.datasets.tiny_tasks.count=600",  # 37 micro batches of 16 an epoch: step 19 ends epoch 0
]
PER_STEP = ("train/loss", "train/lr", "train/grad_norm", "train/tokens_per_s")


def _train(root: Path, server: str, name: str, *extra: str) -> TrainResult:
    overrides = [f"run.output_root={root}", f"run.name={name}", f"tracker.uri={server}", *QUICK, *extra]
    return train(load_config(overrides, run_dir=root / name))


def _history(client: MlflowClient, run_id: str) -> dict[str, list[tuple[int, float]]]:
    keys = client.get_run(run_id).data.metrics
    return {k: sorted((m.step, m.value) for m in client.get_metric_history(run_id, k)) for k in keys}


def test_train_validation_and_throughput_share_the_optimizer_step(
    tmp_path: Path, mlflow_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    client = MlflowClient(tracking_uri=mlflow_server)
    straight = _train(tmp_path, mlflow_server, "straight", "trainer.max_steps=20")
    # Accumulation 2, 10 steps, then resumed from last.ckpt (taken at a validation step) to 20.
    first = _train(tmp_path, mlflow_server, "accum", "trainer.max_steps=10", "data.micro_batch=16")
    accum = _train(tmp_path, mlflow_server, "accum", "trainer.max_steps=20", "data.micro_batch=16")
    assert accum.run_id == first.run_id  # the same MLflow run goes on
    printed = capsys.readouterr().out  # the progress lines (stdout is not a terminal here)

    for result in (straight, accum):
        history = _history(client, result.run_id)
        steps = {key: [step for step, _ in points] for key, points in history.items()}
        assert steps == {
            **dict.fromkeys(PER_STEP, [10, 20]),
            "val/loss": [0, 10, 20],
            "val/exact_match": [0, 10, 20],
        }
        # metrics.jsonl holds exactly what the tracker holds, value for value.
        assert read_history(result.run_dir) == history
        # The end summary reports the last step's values.
        assert result.metrics["train/loss"] == dict(history["train/loss"])[20]
        assert result.val_loss == dict(history["val/loss"])[20]
        # The progress lines name the step whose loss they show.
        for step, loss in history["train/loss"]:
            assert re.search(rf"^step {step}/(10|20) \(\d+%\)  loss {loss:.4f}  ", printed, re.M), step

    # train/lr at step N is the rate of update N: the schedule after N - 1 scheduler steps (as float32,
    # the dtype Lightning keeps logged values in).
    cfg = load_config(["trainer.max_steps=20"])

    def rate(after: int) -> float:
        return torch.tensor(
            cfg.optimizer.lr * lr_factor(after, cfg.scheduler, 20), dtype=torch.float32
        ).item()

    lr = dict(_history(client, straight.run_id)["train/lr"])
    assert lr == {10: rate(9), 20: rate(19)}
    assert lr[10] != rate(10)  # the check can fail
