"""`trainer cancel [RUN_FOLDER | JOB_ID]`: cancel a submitted run's Slurm job (scancel). The run keeps
what it wrote; its last checkpoint, if any, is where `trainer submit` with the same run.name resumes."""

from __future__ import annotations

from trainer.boundary import USER_ERRORS, report_and_exit
from trainer.commands.usage import wants_help

USAGE = "trainer cancel [RUN_FOLDER | JOB_ID]"


def main(args: list[str]) -> None:
    if wants_help(args):
        print(f"usage: {USAGE}\n\n{__doc__}")
        return
    from trainer.launch.slurm import cancel, find_job

    try:
        job_id, run_dir = find_job(args[0] if args else None)
        cancel(job_id)
    except USER_ERRORS as err:
        report_and_exit(err)
    print(f"cancelled Slurm job {job_id}" + (f" (run folder {run_dir})" if run_dir else ""))
