"""launcher=slurm without a cluster: the sbatch script a config becomes, the submitit settings of a sweep,
Slurm time limits, and the errors of submit/status/cancel where no Slurm can be reached."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from tests.conftest import load_config, run_cli
from trainer.boundary import CONF_DIR, register_resolvers
from trainer.config.launcher import slurm_minutes, slurm_options, time_limit_seconds
from trainer.launch.slurm import job_command, render_script


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 5400), ("5:30", 330), ("01:30:00", 5400), ("2-0", 172800), ("1-02:03", 93780),
     ("1-00:00:10", 86410), ("1h", None), ("", None), ("1:2:3:4", None)],
)  # fmt: skip
def test_slurm_time_limits(text: str, seconds: int | None) -> None:
    assert time_limit_seconds(text) == seconds


def test_sweep_settings_helpers() -> None:
    assert slurm_minutes("00:10:30") == 11 and slurm_minutes("0:20") == 1
    assert slurm_options(["--mail-type=END", "#SBATCH --reservation=r1", "--overcommit"], True, True) == {
        "requeue": True,
        "exclusive": True,
        "mail_type": "END",
        "reservation": "r1",
        "overcommit": True,
    }
    assert slurm_options([], False, False) == {}


def test_the_sbatch_script_of_a_two_node_run(tmp_path: Path) -> None:
    cfg = load_config(
        [
            "launcher=slurm",
            "parallelism=ddp",
            "parallelism.accelerator=gpu",
            "parallelism.nodes=2",
            "parallelism.devices=4",
            "data.global_batch=256",
            "launcher.gpus_per_node=4",
            "launcher.partition=gpu",
            "launcher.account=proj",
            "launcher.mem_gb=64",
            "launcher.time=2-00:00:00",
            "launcher.exclusive=true",
            "launcher.sbatch=['--mail-type=END']",
            "launcher.setup=['module load cuda/12.4']",
        ]
    )
    run_dir = tmp_path / "outputs" / "default" / "r1"
    args = ["parallelism=ddp", "run.name=old", "+run.output_root=x", "optimizer.lr=1e-4"]
    script = render_script(cfg.launcher, args, run_dir, tmp_path)
    sbatch = [line.removeprefix("#SBATCH ") for line in script.splitlines() if line.startswith("#SBATCH")]
    assert sbatch == [
        "--job-name=trainer",
        "--nodes=2",
        "--ntasks-per-node=4",
        "--time=2-00:00:00",
        f"--output={run_dir}/slurm/%j.out",
        "--open-mode=append",
        f"--chdir={tmp_path}",
        "--partition=gpu",
        "--account=proj",
        "--mem=64G",
        "--gpus-per-node=4",
        "--exclusive",
        "--requeue",
        "--signal=USR2@120",
        "--mail-type=END",
    ]
    lines = script.splitlines()
    assert lines.index("module load cuda/12.4") < next(
        i for i, x in enumerate(lines) if x.startswith("exec srun")
    )
    # The run folder is pinned (the user's run.name/output_root dropped), the rest kept in order.
    assert job_command(cfg.launcher, args, run_dir) == [
        sys.executable, "-m", "trainer", "parallelism=ddp", "optimizer.lr=1e-4",
        "run.name=r1", f"run.output_root={tmp_path / 'outputs'}",
    ]  # fmt: skip


def test_a_gpu_submission_validates_on_a_machine_without_gpus() -> None:
    """The facts are the nodes' (from the launcher), not this CPU machine's."""
    cfg = load_config(["launcher=slurm", "parallelism.accelerator=gpu", "launcher.gpus_per_node=1"])
    assert cfg.hardware.cuda is True and cfg.hardware.gpu_count == 1 and cfg.on_gpu


def test_sweeps_get_the_same_settings_through_hydras_submitit_launcher() -> None:
    register_resolvers()
    overrides = ["launcher=slurm", "launcher.time=00:30:00", "launcher.partition=debug", "launcher.mem_gb=8"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[*overrides, "parallelism=ddp"], return_hydra_config=True)
    hl = cfg.hydra.launcher
    assert hl._target_.endswith("SlurmLauncher")
    assert (hl.timeout_min, hl.nodes, hl.tasks_per_node, hl.partition, hl.mem_gb) == (30, 1, 2, "debug", 8)
    assert hl.signal_delay_s == 120 and dict(hl.additional_parameters) == {"requeue": True}


def test_commands_without_slurm_say_so(tmp_path: Path) -> None:
    env = {"PATH": str(Path(sys.executable).parent)}  # no sbatch, scontrol or scancel on it
    submit = run_cli(["submit", f"run.output_root={tmp_path}"], cwd=tmp_path, **env)
    assert submit.returncode == 2 and "`sinfo`" not in submit.stderr
    assert "launcher=slurm: `sbatch` is not on PATH, so Slurm cannot be reached from here" in submit.stderr
    assert "Traceback" not in submit.stderr
    status = run_cli(["status"], cwd=tmp_path, **env)
    assert status.returncode == 2 and "no submitted run under outputs/" in status.stderr
    cancel = run_cli(["cancel", str(tmp_path)], cwd=tmp_path, **env)
    assert cancel.returncode == 2
    assert f"{tmp_path}: not a run folder submitted to Slurm (no slurm/job_id)" in cancel.stderr
