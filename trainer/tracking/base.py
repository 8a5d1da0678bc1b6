"""The tracker interface: what training, `trainer evaluate` and the summaries need from a tracker.

A run asks its tracker to start (a new tracker run, or the one this run folder logged to before), for a
Lightning logger that receives the loop's metrics, to log metrics, params and files, and where it logged.
`NullTracker` (tracker=none) does nothing; trackers are chosen by `trainer.tracking.for_config`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class Tracker:
    """The interface; every method is a no-op here, so a tracker overrides only what it records."""

    def start(self, run_dir: Path, resume: str | None) -> None:
        """Open the tracker run of `run_dir`; `resume` is the checkpoint this fit continues from."""

    @property
    def logger(self) -> Any:
        """The Lightning logger for the training loop's metrics, or None."""
        return None

    @property
    def run_id(self) -> str | None:
        """The tracker's id of this run (an MLflow run id), or None when nothing is tracked."""
        return None

    @property
    def continued(self) -> bool:
        """Whether start() continued a tracker run this run folder had before (its params are logged)."""
        return False

    def finish(self) -> None:
        """The run ended well: mark it so (failures and kills are marked as they happen)."""

    def open_sweep(self, sweep_id: str, jobs: int) -> str | None:
        """A run for a whole sweep, under which its jobs' runs are shown; its id, or None."""
        return None

    def close_sweep(self, run_id: str, failed: int) -> None:
        """The sweep ended, `failed` of its jobs with an error."""

    def log_datasets(self, datasets: list[dict[str, Any]]) -> None:
        """The data a run trained and validated on (name, source, digest, context, counts)."""

    def log_tags(self, tags: dict[str, str]) -> None:
        """Facts about the run that are not its config (host, command line, git commit, hardware)."""

    def fail(self, killed: bool = False) -> None:
        """The run ended with an error (FAILED), or was interrupted (KILLED)."""

    def log_params(self, params: dict[str, Any]) -> None:
        """Params of a new tracker run."""

    def log_files(self, files: list[Path]) -> None:
        """Files as artifacts of the run."""

    def log_model(self, folder: Path, step: int, adapter: bool) -> str | None:
        """The exported model (a Hugging Face folder, or a PEFT adapter) as the tracker's model of this
        run when the tracker is asked to keep one; where it went, or None."""
        return None

    def describe(self) -> str:
        """One line for the start summary: where metrics go and how to look at them."""
        return "off (tracker=none)"

    def location(self) -> str | None:
        """Where this run's metrics went (for the end summary), or None when nothing was tracked."""
        return None

    def record_evaluation(
        self, metrics: dict[str, float], run_dir: Path | None, tags: dict[str, str]
    ) -> str | None:
        """`trainer evaluate`: log `metrics` into the run folder's own tracker run when it has one,
        else into a new run with `tags`; returns where they went, or None when nothing was tracked."""
        return None


class NullTracker(Tracker):
    """tracker=none: nothing is tracked."""
