"""The Lightning logger that tracker=mlflow hands the training loop: Lightning's `MLFlowLogger` with the
three things a run needs from it that it does not do.

- The run is not ended FINISHED after every validate() and fit(): the step-0 baseline validation marked
  runs FINISHED before they trained, so killed and crashed runs showed as finished. Success is said
  once, at the end (`closing`); failures and kills pass through.
- Replayed steps are stored once: after a kill between checkpoints a resumed fit trains steps the
  continued MLflow run already holds, with the same values (resume is exact). Per metric: a kill after
  step N's training metrics were sent and before its validation leaves val/loss short of N.
- A tracking server that goes away never stops training: a failed send keeps the points in memory
  (at most `MAX_PENDING`, the oldest dropped and counted beyond that) and tries again after
  `RETRY_S` (the oldest first, unless the server holds it already: a send can be written before its
  answer is lost); the end of the run tries once more and says what could not be sent. MLflow's own HTTP
  retries are cut to seconds (`quick_http`), not the ~4 minutes that stalled training.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from lightning.pytorch.loggers import MLFlowLogger

from trainer.errors import first_line

log = logging.getLogger("trainer")

MAX_PENDING = 100_000  # metric dicts kept while the server is away (a few MB)
RETRY_S = 30.0


def quick_http() -> None:
    """Fail a request in seconds when the server is away (the user's own settings win)."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")


class RunLogger(MLFlowLogger):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.closing = False
        self.stored_through: dict[str, int] = {}  # a continued run: each metric's last stored step
        self.pending: list[tuple[dict[str, float], int | None]] = []
        self.dropped = 0
        self._retry_at = 0.0
        self._down_since: float | None = None
        self._unsure = False  # the oldest pending point may be on the server already

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if step is not None:
            metrics = {k: v for k, v in metrics.items() if step > self.stored_through.get(k, -1)}
        if not metrics:
            return
        self.pending.append((dict(metrics), step))
        if len(self.pending) > MAX_PENDING:
            self.pending.pop(0)
            self.dropped += 1
        self.send()

    def send(self, now: bool = False) -> bool:
        """Send what is pending, oldest first; False while the server is away (kept for later)."""
        if not now and time.monotonic() < self._retry_at:
            return False
        while self.pending:
            metrics, step = self.pending[0]
            try:
                if self._unsure:  # the failed send may have been written before its answer was lost
                    stored = self._stored(metrics, step)
                    self._unsure = False
                    if stored:
                        self.pending.pop(0)
                        continue
                super().log_metrics(metrics, step)
            except Exception as err:  # noqa: BLE001 - whatever the transport raises, training goes on
                self._retry_at = time.monotonic() + RETRY_S
                self._unsure = True
                if self._down_since is None:
                    self._down_since = time.monotonic()
                    log.warning(
                        "tracking server unreachable (%s): training goes on, metrics are kept and sent "
                        "when it answers again (every %.0f s)",
                        first_line(err),
                        RETRY_S,
                    )
                return False
            self.pending.pop(0)
        if self._down_since is not None:
            log.warning("tracking server back after %.0f s", time.monotonic() - self._down_since)
            self._down_since = None
        return True

    def _stored(self, metrics: dict[str, float], step: int | None) -> bool:
        """Whether the server holds this point already: the send that failed may have been written
        before its answer was lost (a log batch is not idempotent; sent again it would be stored twice)."""
        key = next(iter(metrics), None)
        if key is None or step is None:
            return False
        return any(m.step == step for m in self.experiment.get_metric_history(self.run_id, key))

    def unsent(self) -> int:
        """Metric points that never reached the server (kept and dropped)."""
        return len(self.pending) + self.dropped

    def finalize(self, status: str = "success") -> None:
        if status in ("success", "finished") and not self.closing:
            return
        self.send(now=True)
        try:
            super().finalize(status)
        except Exception as err:  # noqa: BLE001 - the run's own outcome does not depend on it
            log.warning("could not mark the MLflow run %s: %s", status, first_line(err))
