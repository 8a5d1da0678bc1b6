"""`launcher:` where a run goes: this machine, or a Slurm cluster (tagged union on `kind`; conf/launcher/).

`launcher=slurm` holds what an sbatch script asks for. The layout keys default to the parallelism
group's (`nodes: ${parallelism.nodes}`, `tasks_per_node: ${parallelism.devices}` in the YAML), and
rules/launcher.py refuses a layout that disagrees, a time limit too short for the requeue signal, GPUs
on a CPU run, and job names Lightning mistakes for an interactive shell, before anything is submitted.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, NonNegativeInt, PositiveInt, field_validator

from trainer.config.base import StrictModel

# Slurm's --time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S.
_TIME = re.compile(r"^(?:(\d+)-(\d+)(?::(\d+)(?::(\d+))?)?|(\d+)(?::(\d+)(?::(\d+))?)?)$")


def time_limit_seconds(text: str) -> int | None:
    """Seconds in a Slurm time limit, or None when Slurm would not read it."""
    m = _TIME.match(text.strip())
    if m is None:
        return None
    days, dh, dm, ds, a, b, c = m.groups()
    if days is not None:
        return int(days) * 86400 + int(dh) * 3600 + int(dm or 0) * 60 + int(ds or 0)
    if c is not None:  # H:M:S
        return int(a) * 3600 + int(b) * 60 + int(c)
    return int(a) * 60 + int(b or 0)  # M or M:S


def slurm_minutes(text: str) -> int:
    """A time limit in whole minutes (submitit's timeout_min), at least 1; an unreadable one is left to
    rules/launcher.py, which names the key."""
    seconds = time_limit_seconds(str(text))
    return max(1, -(-seconds // 60)) if seconds is not None else 60


def slurm_options(lines: list[str], exclusive: bool, requeue: bool) -> dict[str, object]:
    """Extra #SBATCH lines (`--mail-type=END`) as submitit's additional_parameters ({mail_type: END})."""
    out: dict[str, object] = {"requeue": True} if requeue else {}
    if exclusive:
        out["exclusive"] = True
    for line in lines or []:
        key, sep, value = str(line).strip().removeprefix("#SBATCH").strip().lstrip("-").partition("=")
        out[key.replace("-", "_")] = value if sep else True
    return out


class LocalLauncher(StrictModel):
    kind: Literal["local"] = Field("local", description="Run here, in this process (and its children).")


class ProcessesLauncher(StrictModel):
    """Sweep jobs as processes on this machine, launched together by Hydra's submitit launcher in local
    mode (a search's `hydra.sweeper.parallel` at a time, a grid's jobs all at once); a single run
    trains in this process as with launcher=local."""

    kind: Literal["processes"] = Field("processes", description="Sweep jobs as parallel local processes.")
    timeout_min: PositiveInt = Field(24 * 60, description="A job still running after this long is killed.")


class SlurmLauncher(StrictModel):
    kind: Literal["slurm"] = Field("slurm", description="Submit to Slurm: sbatch, one srun task per device.")
    partition: str | None = Field(None, description="--partition; null = the cluster's default.")
    account: str | None = Field(None, description="--account; null = your default account.")
    qos: str | None = Field(None, description="--qos; null = the default.")
    time: str = Field("01:00:00", description="--time limit: M, M:S, H:M:S, D-H, D-H:M or D-H:M:S.")
    nodes: PositiveInt = Field(1, description="--nodes; must equal parallelism.nodes (the default).")
    tasks_per_node: PositiveInt = Field(
        1, description="--ntasks-per-node; must equal parallelism.devices (the default): one task per device."
    )
    gpus_per_node: NonNegativeInt = Field(0, description="--gpus-per-node; 0 on a CPU run.")
    cpus_per_task: PositiveInt | None = Field(None, description="--cpus-per-task; null = Slurm's default.")
    mem_gb: PositiveInt | None = Field(None, description="--mem per node in GB; null = Slurm's default.")
    constraint: str | None = Field(None, description="--constraint (node features); null = any node.")
    exclusive: bool = Field(False, description="--exclusive: no other job on the nodes.")
    job_name: str = Field("trainer", description="--job-name (not bash or interactive: see rules).")
    requeue: bool = Field(
        True, description="On the time-limit signal or a preemption: checkpoint, requeue, resume here."
    )
    signal_before_s: PositiveInt = Field(
        120, description="Seconds before the time limit Slurm sends the signal (Slurm adds up to 60 s)."
    )
    sbatch: list[str] = Field(
        default_factory=list, description="Extra #SBATCH lines, e.g. ['--mail-type=END', '--reservation=x']."
    )
    setup: list[str] = Field(
        default_factory=list,
        description="Shell lines run before srun (module load ..., source venv/bin/activate).",
    )
    python: str | None = Field(
        None, description="The Python the nodes run; null = the one that submits (sys.executable)."
    )
    srun_args: list[str] = Field(default_factory=list, description="Extra srun arguments.")

    @field_validator("sbatch")
    @classmethod
    def _options_only(cls, lines: list[str]) -> list[str]:
        """Lines are options (`--mail-type=END`); a leading `#SBATCH` is accepted and dropped."""
        out = []
        for line in lines:
            option = line.strip().removeprefix("#SBATCH").strip()
            if not option.startswith("-"):
                raise ValueError(f"'{line}' is not an sbatch option; write e.g. '--mail-type=END'")
            out.append(option)
        return out

    @property
    def time_seconds(self) -> int | None:
        return time_limit_seconds(self.time)


LauncherConfig = Annotated[LocalLauncher | ProcessesLauncher | SlurmLauncher, Field(discriminator="kind")]
