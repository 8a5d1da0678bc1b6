"""`trainer submit <overrides>`: validate here, write the sbatch script into a new run folder, submit it,
print the job id and how to follow it, and return at once.

It is the same run as `python -m trainer <overrides> launcher=slurm`: the config is composed and
checked on this machine (with the facts of the nodes the job asks for: its GPUs, its layout), an
unknown partition is refused before sbatch, and the job runs the same command line on the nodes, one
task per device under srun. `launcher=slurm` is added when the command line chooses no launcher.
"""

from __future__ import annotations

from pathlib import Path

from trainer.boundary import USER_ERRORS, compose, report_and_exit
from trainer.commands.usage import help_text, wants_help
from trainer.config import TrainConfig
from trainer.errors import UserError

USAGE = "trainer submit [GROUP=OPTION ...] [KEY=VALUE ...]"


def with_slurm(args: list[str]) -> list[str]:
    return args if any(a.lstrip("+").startswith("launcher=") for a in args) else [*args, "launcher=slurm"]


def submit_run(cfg: TrainConfig, args: list[str], run_dir: Path) -> None:
    """Submit and print the panel: the one path of `trainer submit` and `trainer launcher=slurm`."""
    from trainer.config.launcher import SlurmLauncher
    from trainer.console import panel
    from trainer.launch.slurm import submit

    if not isinstance(cfg.launcher, SlurmLauncher):
        raise UserError(
            "launcher=local: trainer submit sends a run to Slurm",
            hint="use launcher=slurm (the default here)",
        )
    uri = getattr(cfg.tracker, "uri", None)
    if uri:  # its password reaches the job in its environment (sbatch passes it on), not in its script
        from trainer.tracking.mlflow import connection_uri

        connection_uri(uri)
    job = submit(cfg.launcher, args, run_dir, Path.cwd())
    panel(
        f"trainer: submitted Slurm job {job.job_id}",
        [
            ("job", f"{job.job_id} ({cfg.launcher.nodes} node(s) x {cfg.launcher.tasks_per_node} task(s))"),
            ("run folder", str(job.run_dir)),
            ("script", f"{job.script}  (resubmit: sbatch {job.script})"),
            ("log", f"{job.log}  (follow: tail -f {job.log})"),
            ("status", f"trainer status {job.run_dir}"),
            ("cancel", f"trainer cancel {job.job_id}"),
        ],
    )


def main(args: list[str]) -> None:
    if wants_help(args):
        print(help_text("submit", __doc__ or "", USAGE, None))
        return
    args = with_slurm(args)
    try:
        inv = compose(args, "trainer submit")
        submit_run(inv.cfg, args, inv.run_dir)
    except USER_ERRORS as err:
        report_and_exit(err)
