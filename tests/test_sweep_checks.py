"""A sweep is validated whole before its first job runs; a job that fails at run time is recorded and
the sweep goes on."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli
from trainer.assets import asset_path
from trainer.boundary.sweep import jobs


def test_jobs_are_hydras_combinations_in_its_order() -> None:
    assert jobs(["optimizer.lr=1e-3,-1", "data.micro_batch=32,64", "trainer.max_steps=2"]) == [
        ["optimizer.lr=0.001", "data.micro_batch=32", "trainer.max_steps=2"],
        ["optimizer.lr=0.001", "data.micro_batch=64", "trainer.max_steps=2"],
        ["optimizer.lr=-1", "data.micro_batch=32", "trainer.max_steps=2"],
        ["optimizer.lr=-1", "data.micro_batch=64", "trainer.max_steps=2"],
    ]


def test_a_sweep_with_invalid_jobs_is_refused_before_any_runs(tmp_path: Path) -> None:
    args = ["-m", "optimizer.lr=1e-3,-1", "data.micro_batch=32,64", f"run.output_root={tmp_path / 'out'}"]
    refused = run_cli(args, cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert refused.stderr.startswith(
        "trainer: error: 3 of 4 jobs of this sweep are invalid; none was started:\n"
        "  job 1 (optimizer.lr=0.001, data.micro_batch=64):\n"
        "    data.global_batch=32: not divisible by micro_batch 64"
    ), refused.stderr
    job2 = "  job 2 (optimizer.lr=-1, data.micro_batch=32):\n    optimizer.lr=-1: Input should be greater"
    assert job2 in refused.stderr
    assert "job 0" not in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "out").exists()  # no sweep folder, no job folder


@pytest.mark.slow
def test_a_job_failing_at_run_time_is_recorded_and_the_sweep_goes_on(tmp_path: Path, quick_overrides) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('[{"instruction": "no output field"}]')
    good = tmp_path / "good.json"
    good.write_bytes(Path(asset_path("data/tiny_tasks/train.json")).read_bytes())
    args = [
        "-m", *quick_overrides, "trainer.max_steps=2", "trainer.val_every=disable", "tracker=none",
        f"data.datasets.tiny_tasks.path={broken},{good}",
    ]  # fmt: skip
    sweep = run_cli(args, cwd=tmp_path)
    assert sweep.returncode == 1, sweep.stderr[-3000:]
    assert "trainer: 1 job(s) of the sweep failed:\n  job 0 (" in sweep.stderr, sweep.stderr[-3000:]
    assert sweep.stdout.count("trainer: finished") == 1  # job 1 ran after job 0 failed
    (folder,) = (tmp_path / "outputs" / "default" / "sweeps").iterdir()
    assert f"sweep {folder.name}: 2 jobs" in sweep.stdout
    width = len(f"path={broken}")
    assert f"     0  {f'path={broken}':<{width}}  failed          n/a  {folder / '0'}" in sweep.stdout
    assert f"     1  {f'path={good}':<{width}}  finished        n/a  {folder / '1'}" in sweep.stdout


@pytest.mark.slow
def test_jobs_failing_in_other_processes_fail_the_sweep(tmp_path: Path, quick_overrides) -> None:
    """launcher=processes (and Slurm): the failure is in the job's result.json, read by the sweep."""
    broken = tmp_path / "broken.json"
    broken.write_text('[{"instruction": "no output field"}]')
    good = Path(asset_path("data/tiny_tasks/train.json"))
    args = [
        "-m", "launcher=processes", *quick_overrides, "trainer.max_steps=2", "trainer.val_every=disable",
        "tracker=none", f"data.datasets.tiny_tasks.path={broken},{good}",
    ]  # fmt: skip
    sweep = run_cli(args, cwd=tmp_path)
    assert sweep.returncode == 1, sweep.stderr[-3000:]
    (folder,) = (tmp_path / "outputs" / "default" / "sweeps").iterdir()
    assert "trainer: 1 job(s) of the sweep failed:\n  job 0: " in sweep.stderr, sweep.stderr[-3000:]
    assert f"     1  {f'path={good}':<{len(f'path={broken}')}}  finished" in sweep.stdout
