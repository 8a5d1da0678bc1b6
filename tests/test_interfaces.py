"""The two interfaces chosen once from the config: `Parallel` (trainer/parallel) and `Tracker`
(trainer/tracking). Every option of their groups maps to its own module."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import CONF, load_config
from trainer.parallel import IMPLEMENTATIONS, for_config, option
from trainer.tracking import NullTracker
from trainer.tracking import for_config as tracker_for

GPU = [
    "hardware.cuda=true",
    "hardware.gpu_count=2",
    "hardware.bf16=true",
    "hardware.packages={deepspeed:true}",
]


@pytest.mark.parametrize(
    ("overrides", "module", "name"),
    [
        ([], "base", "Parallel"),
        (["parallelism=ddp", "data.global_batch=64"], "ddp", "Ddp"),
        (["parallelism=fsdp", "data.global_batch=64"], "fsdp2", "Fsdp2"),
        (["parallelism=fsdp", "parallelism.version=1", "data.global_batch=64", *GPU], "fsdp1", "Fsdp1"),
        (["parallelism=deepspeed", "data.global_batch=64", *GPU], "deepspeed", "DeepSpeed"),
    ],
)
def test_each_parallelism_option_is_one_module(overrides: list[str], module: str, name: str) -> None:
    parallel = for_config(load_config(overrides))
    assert type(parallel).__module__ == f"trainer.parallel.{module}" and type(parallel).__name__ == name


def test_every_parallelism_file_has_an_implementation() -> None:
    options = {p.stem for p in (CONF / "parallelism").glob("*.yaml")}
    rows = {option(load_config([f"parallelism={o}", "data.global_batch=64", *GPU])) for o in options}
    assert rows <= set(IMPLEMENTATIONS) and {"fsdp2", "single", "ddp", "deepspeed"} <= rows


def test_tracker_none_records_nothing(tmp_path: Path) -> None:
    tracker = tracker_for(load_config(["tracker=none"]))
    assert isinstance(tracker, NullTracker) and tracker.logger is None and tracker.run_id is None
    tracker.start(tmp_path, None)
    assert tracker.describe() == "off (tracker=none)" and tracker.location() is None
    assert tracker.record_evaluation({"eval/loss": 1.0}, tmp_path, {}) is None
    assert list(tmp_path.iterdir()) == []


def test_mlflow_tracker_defaults_to_a_sqlite_store_under_the_output_root(tmp_path: Path) -> None:
    cfg = load_config([f"run.output_root={tmp_path}"])
    tracker = tracker_for(cfg)
    assert tracker.uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert tracker.artifact_root == str(tmp_path / "mlartifacts") and tracker.experiment == "default"
    served = tracker_for(load_config(["tracker.uri=http://127.0.0.1:5000", "tracker.experiment=x"]))
    assert served.uri == "http://127.0.0.1:5000" and served.artifact_root is None and served.experiment == "x"
