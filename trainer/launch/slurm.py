"""Slurm: the sbatch script of a run, and sbatch / scontrol / scancel / sinfo behind small functions.

The script lives in the run folder (`<run>/slurm/job.sbatch`), so a user can read it and resubmit it
with plain `sbatch`. It starts one task per device with srun (Lightning's SLURM environment takes ranks
from there) and runs exactly the command line that was submitted, with the run folder pinned
(`run.name`, `run.output_root`), so a requeued job composes the same config, lands in the same folder
and resumes from its last checkpoint. Slurm's output goes to `<run>/slurm/<job id>.out`, appended to
across requeues.

Requeue has one owner, trainer/training/signals.py: the script asks Slurm for `--signal=USR2@N` and
`--requeue`; Lightning's own SIGUSR1 auto-requeue is switched off.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from trainer.config.launcher import SlurmLauncher
from trainer.config.redact import redact
from trainer.errors import UserError, first_line

FOLDER = "slurm"
SCRIPT = "job.sbatch"
JOB_ID = "job_id"
REQUEUE_SIGNAL = "USR2"
# Keys the script sets itself: the run folder is pinned so a requeued job lands in the same one.
PINNED = ("run.name", "run.output_root")


@dataclass(frozen=True)
class Submission:
    job_id: str
    run_dir: Path
    script: Path

    @property
    def log(self) -> Path:
        return self.run_dir / FOLDER / f"{self.job_id}.out"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise UserError(
            f"launcher=slurm: `{name}` is not on PATH, so Slurm cannot be reached from here",
            hint="run on a login node of the cluster (with the Slurm client commands), or use launcher=local",
        )
    return path


def _run(args: list[str], what: str, timeout: float = 60) -> str:
    try:
        done = subprocess.run(
            [_tool(args[0]), *args[1:]], capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise UserError(
            f"{what}: `{args[0]}` did not answer in {timeout:.0f} s", hint="is slurmctld up?"
        ) from None
    if done.returncode != 0:
        message = first_line(done.stderr.strip() or done.stdout.strip() or f"exit {done.returncode}")
        raise UserError(f"{what}: {args[0]} said: {message}", hint="see the Slurm message above")
    return done.stdout


def sbatch_options(s: SlurmLauncher, run_dir: Path, workdir: Path) -> list[str]:
    """The #SBATCH options, in the order they are written."""
    out = run_dir / FOLDER / "%j.out"
    opts = [
        f"--job-name={s.job_name}",
        f"--nodes={s.nodes}",
        f"--ntasks-per-node={s.tasks_per_node}",
        f"--time={s.time}",
        f"--output={out}",
        "--open-mode=append",
        f"--chdir={workdir}",
    ]
    named = {
        "partition": s.partition,
        "account": s.account,
        "qos": s.qos,
        "cpus-per-task": s.cpus_per_task,
        "mem": f"{s.mem_gb}G" if s.mem_gb else None,
        "constraint": s.constraint,
    }
    opts += [f"--{k}={v}" for k, v in named.items() if v is not None]
    if s.gpus_per_node:
        opts.append(f"--gpus-per-node={s.gpus_per_node}")
    if s.exclusive:
        opts.append("--exclusive")
    if s.requeue:
        opts += ["--requeue", f"--signal={REQUEUE_SIGNAL}@{s.signal_before_s}"]
    else:
        opts.append("--no-requeue")
    return opts + list(s.sbatch)


def job_command(s: SlurmLauncher, args: list[str], run_dir: Path) -> list[str]:
    """`python -m trainer <args>` with the run folder pinned (user values for the pinned keys dropped).
    Passwords in URLs are written `***`: the job takes them from the environment sbatch passes on."""
    kept = [redact(a) for a in args if not a.lstrip("+").startswith(tuple(f"{k}=" for k in PINNED))]
    pinned = [f"run.name={run_dir.name}", f"run.output_root={run_dir.parent.parent}"]
    return [s.python or sys.executable, "-m", "trainer", *kept, *pinned]


def render_script(s: SlurmLauncher, args: list[str], run_dir: Path, workdir: Path) -> str:
    srun = ["srun", "--kill-on-bad-exit=1", *s.srun_args, *job_command(s, args, run_dir)]
    lines = [
        "#!/bin/bash",
        f"# Written by `trainer submit` on {time.strftime('%Y-%m-%d %H:%M:%S')} for the run folder",
        f"# {run_dir}. Resubmit as it is with: sbatch {run_dir / FOLDER / SCRIPT}",
        *(f"#SBATCH {o}" for o in sbatch_options(s, run_dir, workdir)),
        "set -e",
        *s.setup,
        'echo "[trainer] job $SLURM_JOB_ID on $SLURM_JOB_NODELIST, restart ${SLURM_RESTART_COUNT:-0}"',
        # exec: signals sent to the batch shell reach srun, which passes them to the tasks.
        "exec " + shlex.join(srun),
        "",
    ]
    return "\n".join(lines)


def check_partition(s: SlurmLauncher) -> None:
    """An unknown partition is refused here, in one line, rather than by sbatch after the fact."""
    if s.partition is None:
        return
    known = _run(["sinfo", "-h", "-o", "%R"], "launcher.partition").split()
    if s.partition not in known:
        raise UserError(
            f"launcher.partition={s.partition}: no such partition on this cluster "
            f"(partitions: {', '.join(sorted(set(known))) or 'none'})",
            hint=f"use one of them, e.g. launcher.partition={sorted(known)[0]}"
            if known
            else "ask the cluster's admins",
        )


def submit(s: SlurmLauncher, args: list[str], run_dir: Path, workdir: Path) -> Submission:
    """Write the script into the run folder and sbatch it; returns at once with the job id."""
    _tool("sbatch")  # before anything is written
    check_partition(s)
    folder = run_dir / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / SCRIPT
    script.write_text(render_script(s, args, run_dir, workdir), encoding="utf-8")
    job_id = _run(["sbatch", "--parsable", str(script)], "trainer submit").strip().split(";")[0]
    (folder / JOB_ID).write_text(job_id + "\n", encoding="utf-8")
    return Submission(job_id, run_dir, script)


def job_fields(job_id: str) -> dict[str, str] | None:
    """`scontrol show job` as a dict (JobState, RunTime, StdOut, ...), or None once Slurm forgot it."""
    done = subprocess.run(
        [_tool("scontrol"), "show", "job", "-o", job_id], capture_output=True, text=True, check=False
    )
    if done.returncode != 0 or not done.stdout.strip():
        return None
    fields: dict[str, str] = {}
    for token in shlex.split(done.stdout.strip().splitlines()[0]):
        key, sep, value = token.partition("=")
        if sep:
            fields[key] = value
    return fields


def cancel(job_id: str) -> None:
    _run(["scancel", job_id], "trainer cancel")


def requeue(job_id: str) -> None:
    _run(["scontrol", "requeue", job_id], "requeue")


def _run_dir_of(fields: dict[str, str]) -> Path | None:
    out = Path(fields.get("StdOut", ""))
    return out.parent.parent if out.parent.name == FOLDER else None


def find_job(target: str | None, output_root: Path = Path("outputs")) -> tuple[str, Path | None]:
    """A job id and its run folder from what the user typed: a job id, a run folder, or nothing (the
    newest run folder under `output_root` that was submitted)."""
    if target and target.isdigit():
        fields = job_fields(target)
        return target, _run_dir_of(fields) if fields else None
    if target:
        run_dir = Path(target)
    else:
        submitted = sorted(output_root.glob(f"*/*/{FOLDER}/{JOB_ID}"), key=lambda p: p.stat().st_mtime)
        if not submitted:
            raise UserError(
                f"no submitted run under {output_root}/",
                hint="pass a run folder or a job id: trainer status outputs/default/NAME",
            )
        run_dir = submitted[-1].parent.parent
    id_file = run_dir / FOLDER / JOB_ID
    if not id_file.is_file():
        raise UserError(
            f"{run_dir}: not a run folder submitted to Slurm (no {FOLDER}/{JOB_ID})",
            hint="pass the folder `trainer submit` printed, or a job id",
        )
    return id_file.read_text(encoding="utf-8").strip(), run_dir.resolve()


def finished_state(job_id: str) -> str | None:
    """The state accounting remembers (sacct), for a job scontrol has forgotten; None without it."""
    if shutil.which("sacct") is None:
        return None
    done = subprocess.run(
        ["sacct", "-j", job_id, "-X", "-n", "-P", "-o", "State"], capture_output=True, text=True, check=False
    )
    lines = done.stdout.split()
    return lines[-1] if done.returncode == 0 and lines else None
