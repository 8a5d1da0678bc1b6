"""`trainer cancel [RUN_FOLDER | JOB_ID]`: cancel a submitted run's Slurm job (scancel). The run keeps
what it wrote; its last checkpoint, if any, is where `trainer submit` with the same run.name resumes."""

from __future__ import annotations

from trainer.commands.usage import slurm_job

USAGE = "trainer cancel [RUN_FOLDER | JOB_ID]"


def main(args: list[str]) -> None:
    from trainer.launch.slurm import cancel

    found = slurm_job(args, USAGE, __doc__, cancel)
    if found is not None:
        job_id, run_dir, _ = found
        print(f"cancelled Slurm job {job_id}" + (f" (run folder {run_dir})" if run_dir else ""))
