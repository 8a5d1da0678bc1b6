"""`trainer status [RUN_FOLDER | JOB_ID]`: a submitted run's Slurm state, elapsed time, restarts and its
last progress line (step, loss). Without an argument: the newest submitted run under ./outputs."""

from __future__ import annotations

from pathlib import Path

from trainer.commands.usage import slurm_job

USAGE = "trainer status [RUN_FOLDER | JOB_ID]"


def last_progress(run_dir: Path | None) -> str:
    """The newest `step N/M ...` line of the run's train.log (trainer/training/progress.py)."""
    log = run_dir / "train.log" if run_dir else None
    if log is None or not log.is_file():
        return "no train.log yet"
    lines = [
        line for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if "] step " in line
    ]
    return lines[-1].split("] ", 2)[-1] if lines else "no step logged yet"


def main(args: list[str]) -> None:
    from trainer.console import panel
    from trainer.launch.slurm import finished_state, job_fields

    found = slurm_job(args, USAGE, __doc__, job_fields)
    if found is None:
        return
    job_id, run_dir, fields = found
    if fields is None:
        state = finished_state(job_id) or "unknown to Slurm (ended a while ago)"
        rows = [("job", job_id), ("state", state)]
    else:
        state = fields.get("JobState", "?")
        if fields.get("Reason") not in (None, "None"):
            state += f" ({fields['Reason']})"
        rows = [
            ("job", f"{job_id} {fields.get('JobName', '')} on {fields.get('NodeList', '?')}"),
            ("state", state),
            ("elapsed", f"{fields.get('RunTime', '?')} of {fields.get('TimeLimit', '?')}"),
            ("restarts", fields.get("Restarts", "0")),
        ]
    rows += [("progress", last_progress(run_dir)), ("run folder", str(run_dir or "?"))]
    panel(f"trainer: status of Slurm job {job_id}", rows)
