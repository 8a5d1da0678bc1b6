"""`<run folder>/metrics.jsonl`: every metric point of the run, kept in the run folder itself.

Why: the tracker is optional (tracker=none), may be unreachable for a while, and lives elsewhere; a sweep
report or a quick plot wants the curves of a job from its folder alone. `MetricsFile` is a Lightning
logger beside the tracker's, so it receives what the training loop sends the tracker (train,
validation, throughput, learning rate; not MLflow's own system metrics), one line per `log_metrics` call:

    {"step": 20, "train/loss": 3.31, "train/lr": 0.00021, "train/grad_norm": 1.7}

Rank 0 writes; each line is flushed as it is written, so a killed run keeps what it logged. A resumed
run appends, and the steps it replays after a kill appear again (with the same values: resume is
exact); `read_history` keeps the last value logged for each (metric, step). Non-finite values are
written as Python's json writes them (NaN, Infinity) and read back by it. Like tracking, the file never
stops training: a write that fails (a full disk) is a warning, and the file is left as it was.
"""

from __future__ import annotations

import json
import logging
from argparse import Namespace
from pathlib import Path
from typing import IO, Any

from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only

from trainer.training.metrics_history import FILE, read_history

__all__ = ["FILE", "MetricsFile", "read_history"]

log = logging.getLogger("trainer")


class MetricsFile(Logger):
    def __init__(self, run_dir: Path) -> None:
        super().__init__()
        self.path = Path(run_dir) / FILE
        self._file: IO[str] | None = None
        self._failed = False

    @property
    def name(self) -> str:
        return "metrics_file"

    @property
    def version(self) -> int:
        return 0

    @property
    def save_dir(self) -> str:
        """The run folder (Lightning's `trainer.log_dir` with tracker=none, where this is the only logger)."""
        return str(self.path.parent)

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if self._failed:
            return
        point = {"step": step, **{key: float(value) for key, value in metrics.items()}}
        try:
            file = self._open()
            file.write(json.dumps(point) + "\n")
            file.flush()
        except OSError as err:
            self._failed = True
            log.warning("cannot write %s (%s): no more metrics go there in this run", self.path, err)

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        """Params are the run folder's config.yaml already."""

    def _open(self) -> IO[str]:
        if self._file is None:
            torn = _ends_mid_line(self.path)
            self._file = open(self.path, "a")  # noqa: SIM115 - one handle for the run, closed by finalize
            if torn:  # a kill inside a write: the next line starts on a line of its own
                self._file.write("\n")
        return self._file

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            try:
                file.close()
            except OSError:  # what a full disk kept in the buffer is lost; said at the failed write
                pass


def _ends_mid_line(path: Path) -> bool:
    if not path.is_file() or not path.stat().st_size:
        return False
    with open(path, "rb") as f:
        f.seek(-1, 2)
        return f.read(1) != b"\n"
