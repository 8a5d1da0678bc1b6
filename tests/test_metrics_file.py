"""<run>/metrics.jsonl: every logged point, one JSON line per log_metrics call, with tracker=none too;
`read_history` gives each metric's curve with one value per step (the last logged), sorted by step.
That it holds the same points as the tracker is checked against a real MLflow server in
test_metric_steps.py."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.conftest import load_config
from trainer.training.metrics_file import FILE, MetricsFile, read_history
from trainer.training.train import train


def test_the_last_value_of_a_step_wins_and_a_torn_line_is_passed_over(tmp_path: Path) -> None:
    (tmp_path / FILE).write_text(
        '{"step": 2, "train/loss": 2.5, "train/lr": 0.1}\n'
        '{"step": 1, "train/loss": 3.0}\n'
        '{"step": 2, "train/loss": 2.25, "val/loss": NaN}\n'
        '{"step": 3, "train/lo'  # a write cut by a kill
    )
    logger = MetricsFile(tmp_path)  # a resumed run appends on a line of its own
    logger.log_metrics({"train/loss": 1.75}, step=3)
    logger.finalize("success")
    history = read_history(tmp_path)
    assert sorted(history) == ["train/loss", "train/lr", "val/loss"]
    assert history["train/loss"] == [(1, 3.0), (2, 2.25), (3, 1.75)]
    assert history["train/lr"] == [(2, 0.1)]
    ((step, value),) = history["val/loss"]
    assert step == 2 and math.isnan(value)
    assert read_history(tmp_path / "elsewhere") == {}


def test_a_write_that_fails_is_one_warning_not_an_error(tmp_path: Path, caplog) -> None:
    (tmp_path / FILE).mkdir()  # a real OSError on open, as a full or read-only disk gives one on write
    logger = MetricsFile(tmp_path)
    for step in (1, 2):
        logger.log_metrics({"train/loss": 1.0}, step=step)
    logger.finalize("success")
    assert caplog.text.count(f"cannot write {tmp_path / FILE}") == 1
    assert read_history(tmp_path) == {}


@pytest.mark.slow
def test_a_resumed_run_appends_and_its_history_has_each_step_once(tmp_path: Path) -> None:
    """6 steps with a checkpoint at 4 only, then resumed to 8: steps 5 and 6 are trained and logged twice."""
    quick = [
        "tracker=none",
        f"run.output_root={tmp_path}",
        "run.name=job",
        "trainer.log_every=2",
        "trainer.val_every=2",
        "trainer.checkpoint_every=4",
        "trainer.save_last=false",
        "trainer.export_model=false",
        "trainer.progress_bar=false",
        "data.datasets.tiny_tasks.count=600",
    ]
    first = train(load_config([*quick, "trainer.max_steps=6"], run_dir=tmp_path / "job"))
    lines = (first.run_dir / FILE).read_text().splitlines()
    before = read_history(first.run_dir)
    second = train(load_config([*quick, "trainer.max_steps=8"], run_dir=tmp_path / "job"))
    assert not (tmp_path / "mlflow.db").exists()  # nothing tracked, the file written all the same

    text = (second.run_dir / FILE).read_text()
    assert text.startswith("\n".join(lines) + "\n")  # appended to, not replaced
    train_steps = [p["step"] for p in map(json.loads, text.splitlines()) if "train/loss" in p]
    assert train_steps == [2, 4, 6, 6, 8]  # step 6 trained again after the resume from step 4
    history = read_history(second.run_dir)
    assert [step for step, _ in history["train/loss"]] == [2, 4, 6, 8]
    assert [step for step, _ in history["val/loss"]] == [0, 2, 4, 6, 8]
    assert dict(history["train/loss"])[8] == second.metrics["train/loss"]
    # Resume is exact: the replayed step has the value it had.
    assert dict(history["train/loss"])[6] == pytest.approx(dict(before["train/loss"])[6], abs=1e-6)
