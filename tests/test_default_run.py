"""The product's promise: `python -m trainer` with no arguments learns, on a CPU, in a few minutes.

Reads the step-0 baseline and the final validation metrics back from MLflow: loss must fall by more
than half, and exact match must reach the learning floor of the worst of three seeds (30 %; the
figures of every seed are benchmarks/default_run.py's, in the README).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import load_config, run_cli

pytestmark = pytest.mark.slow


def test_default_run_learns(tmp_path: Path) -> None:
    proc = run_cli([f"run.output_root={tmp_path / 'outputs'}", "trainer.progress_bar=false"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("default").experiment_id])
    loss = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "val/loss")}
    em = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "val/exact_match")}
    last = max(loss)
    assert min(loss) == 0 and last == load_config().trainer.max_steps
    assert loss[last] < 0.5 * loss[0], loss
    assert em[0] < 0.02 and em[last] >= 0.30, em
    print(
        f"default run: val loss {loss[0]:.3f} -> {loss[last]:.3f}, exact match {em[0]:.1%} -> {em[last]:.1%}"
    )
