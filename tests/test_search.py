"""An Optuna search end to end: trials launched by our sweeper, a bad trial pruned from its validation
loss, the sweeping process killed mid-trial and the search continued from its sqlite study, the killed
trial resuming from its checkpoint in its own folder, one MLflow parent run throughout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import cli_env, run_cli

pytestmark = pytest.mark.slow


def _args(tmp_path: Path) -> list[str]:
    # Random sampling with seed 11 proposes lr 0.003, 1e-05, 0.003 for the three trials (checked below).
    return [
        "-m", "hparams_search=tiny", f"run.output_root={tmp_path / 'outputs'}",
        "trainer.max_steps=40", "trainer.val_every=20", "trainer.checkpoint_every=20",
        "trainer.progress_bar=false", "data.datasets.tiny_tasks.count=600",
        "hydra.sweeper.trials=3", "hydra.sweeper.sampler.kind=random", "hydra.sweeper.sampler.seed=11",
        "hydra.sweeper.pruner.startup_trials=1", "hydra.sweeper.pruner.warmup_steps=0",
        "optimizer.lr=choice(0.003,0.00001)", f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]  # fmt: skip


def _kill_during_trial_2(tmp_path: Path) -> None:
    """Start the search and SIGKILL its whole process group once job 2 has written its step-20
    checkpoint (the sweeping process and its trial die together, as on a lost login session)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainer", *_args(tmp_path)],
        cwd=tmp_path, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    saved, deadline = tmp_path / "sweep" / "2" / "checkpoints" / "step-000020.ckpt", time.time() + 300
    while not saved.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert saved.exists(), "the search ended before job 2 saved a checkpoint"
    assert not (tmp_path / "sweep" / "2" / "result.json").exists()  # killed mid-trial


def test_search_prunes_survives_a_kill_and_continues_from_its_study(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    _kill_during_trial_2(tmp_path)
    proc = run_cli(_args(tmp_path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "trainer: continuing the search in" in proc.stdout and "(2 trials settled)" in proc.stdout
    assert "trainer: trial 2 (job 2) was interrupted; it continues in its folder" in proc.stdout
    assert f"Resuming from {sweep / '2' / 'checkpoints'}" in (sweep / "2" / "train.log").read_text()

    study = optuna.load_study(study_name="sweep", storage=f"sqlite:///{sweep / 'optuna.db'}")
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "PRUNED", "FAIL", "COMPLETE"]
    assert [t.user_attrs["job"] for t in trials] == ["0", "1", "2", "2"]
    assert [t.params["optimizer.lr"] for t in trials] == [0.003, 1e-05, 0.003, 0.003]
    assert trials[1].user_attrs["pruned_at_step"] == 20 and list(trials[1].intermediate_values) == [20]
    assert trials[2].user_attrs["interrupted"] is True and trials[3].user_attrs["retry_of"] == 2
    assert trials[3].params == trials[2].params  # asked again with the same values

    records = {job: json.loads((sweep / job / "result.json").read_text()) for job in ("0", "1", "2")}
    assert [records[j]["status"] for j in ("0", "1", "2")] == ["finished", "pruned", "finished"]
    assert trials[0].value == pytest.approx(records["0"]["metrics"]["val/loss"])
    assert trials[3].value == pytest.approx(records["2"]["metrics"]["val/loss"])
    assert records["1"]["params"]["optimizer.lr"] == "1e-05"
    assert json.loads((sweep / "search.json").read_text())["direction"] == "minimize"
    best = min(("0", "2"), key=lambda j: records[j]["metrics"]["val/loss"])
    assert "sweep sweep: 3 jobs (val/loss, lower is better; * best)" in proc.stdout, proc.stdout[-2000:]
    assert f" *   {best}  lr=0.003," in proc.stdout

    report = run_cli(["report", str(sweep)], cwd=tmp_path)  # from the jobs' metrics.jsonl and the study
    assert report.returncode == 0, report.stderr[-3000:]
    assert "no loss curve" not in report.stdout
    for chart in ("loss_curves", "objective_vs_optimizer.lr", "optimization_history", "intermediate_values"):
        assert f"wrote {sweep / 'report' / chart}.png" in report.stdout, report.stdout
    assert (sweep / "report" / "report.html").stat().st_size > 10_000

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("search_tiny").experiment_id])
    (parent,) = [r for r in runs if r.info.run_name == "sweep sweep"]  # reopened, not a second one
    children = [r for r in runs if r is not parent]
    assert sorted(r.data.tags["sweep_job"] for r in children) == ["0", "1", "2"]  # job 2 continued its run
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    assert parent.info.status == "FINISHED" and {r.info.status for r in children} == {"FINISHED"}


def test_parallel_trials_run_side_by_side_as_local_processes(tmp_path: Path) -> None:
    args = [
        "-m", "launcher=processes", "hparams_search=tiny", f"run.output_root={tmp_path / 'outputs'}",
        "hydra.sweeper.trials=2", "hydra.sweeper.parallel=2", "trainer.max_steps=6", "trainer.val_every=3",
        "trainer.checkpoint_every=disable", "trainer.progress_bar=false",
        "data.datasets.tiny_tasks.count=600", "tracker=none", f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]  # fmt: skip
    proc = run_cli(args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    study = optuna.load_study(study_name="sweep", storage=f"sqlite:///{tmp_path / 'sweep' / 'optuna.db'}")
    first, second = study.get_trials()
    assert first.state.name == second.state.name == "COMPLETE"
    assert list(first.intermediate_values) == [3, 6] == list(second.intermediate_values)  # reported live
    # Asked together and run together: each started before the other one ended.
    assert first.datetime_start < second.datetime_complete and second.datetime_start < first.datetime_complete
    assert len(list((tmp_path / "sweep" / ".submitit").iterdir())) == 3  # one local submission of two jobs
