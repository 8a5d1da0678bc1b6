"""Rules on `launcher=slurm`: the job Slurm is asked for must be the job the run expects, and leave room
to requeue. They run on the submitting machine, before anything is submitted."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from trainer.config.launcher import SlurmLauncher
from trainer.config.problems import Problem
from trainer.config.rules.training import Rule

if TYPE_CHECKING:
    from trainer.config.train import TrainConfig

# Slurm checks for the warning signal every 30 s and sends it up to 60 s earlier than asked.
SIGNAL_SLACK_S = 60
# Lightning takes a Slurm job with one of these names for an interactive shell: every rank thinks it is
# rank 0 and the run hangs (measured on the two-node cluster).
SHELL_NAMES = ("bash", "interactive")


def _slurm(cfg: TrainConfig) -> SlurmLauncher | None:
    return cfg.launcher if isinstance(cfg.launcher, SlurmLauncher) else None


def _layout_matches(cfg: TrainConfig) -> Iterator[Problem]:
    s, p = _slurm(cfg), cfg.parallelism
    if s is None:
        return
    nodes, devices = (p.nodes, p.devices) if p.distributed else (1, 1)
    if s.nodes != nodes:
        yield Problem(
            "launcher.nodes",
            s.nodes,
            f"the run trains on parallelism.nodes={nodes} node(s)",
            f"set parallelism.nodes={s.nodes} (with parallelism=ddp or fsdp), or leave launcher.nodes "
            "unset (it follows parallelism.nodes)",
        )
    if s.tasks_per_node != devices:
        yield Problem(
            "launcher.tasks_per_node",
            s.tasks_per_node,
            f"Lightning runs one task per device and the run has parallelism.devices={devices} per node",
            f"set parallelism.devices={s.tasks_per_node}, or leave launcher.tasks_per_node unset "
            "(it follows parallelism.devices)",
        )


def _time_limit(cfg: TrainConfig) -> Problem | None:
    s = _slurm(cfg)
    if s is None:
        return None
    seconds = s.time_seconds
    if seconds is None:
        return Problem(
            "launcher.time",
            s.time,
            "not a Slurm time limit",
            "write minutes (90), H:M:S (01:30:00) or D-H:M:S (1-00:00:00)",
        )
    if s.requeue and seconds <= s.signal_before_s + SIGNAL_SLACK_S:
        return Problem(
            "launcher.time",
            s.time,
            f"leaves no room for the requeue signal {s.signal_before_s} s (+ up to {SIGNAL_SLACK_S} s) "
            "before the limit",
            f"use a time limit above {(s.signal_before_s + SIGNAL_SLACK_S) // 60 + 1} minutes, a smaller "
            "launcher.signal_before_s, or launcher.requeue=false",
        )
    return None


def _gpus_match_accelerator(cfg: TrainConfig) -> Problem | None:
    s, acc = _slurm(cfg), cfg.parallelism.accelerator
    if s is None:
        return None
    if s.gpus_per_node and acc == "cpu":
        return Problem(
            "launcher.gpus_per_node",
            s.gpus_per_node,
            "GPUs asked for, but parallelism.accelerator=cpu would leave them idle",
            "use launcher.gpus_per_node=0, or parallelism.accelerator=gpu",
        )
    if not s.gpus_per_node and acc == "gpu":
        return Problem(
            "launcher.gpus_per_node",
            0,
            "parallelism.accelerator=gpu, but the job asks for no GPUs",
            "set launcher.gpus_per_node to the GPUs per node (parallelism.devices)",
        )
    return None  # fewer GPUs than tasks: rules/hardware.py, from the facts the job asks for


def _job_name(cfg: TrainConfig) -> Problem | None:
    s = _slurm(cfg)
    if s is None or s.job_name not in SHELL_NAMES:
        return None
    return Problem(
        "launcher.job_name",
        s.job_name,
        "Lightning treats a job with this name as an interactive shell, and every rank hangs as rank 0",
        "use another name, e.g. launcher.job_name=trainer",
    )


RULES: tuple[Rule, ...] = (_layout_matches, _time_limit, _gpus_match_accelerator, _job_name)
