"""What each job of a sweep ended with, and the table of all of them printed when the sweep ends.

Each job writes `<job folder>/result.json`: its label (the swept values, `lr=0.001`), `params` (each
swept key's value, as overridden), status (finished, failed, pruned), `val_loss` and every final metric
(`metrics`), and the error of a failed job. The table is read back from the sweep folder, so it is the
same whether Hydra ran the jobs in this process or submitit ran them on Slurm nodes. The objective is the
final validation loss unless an Optuna search names another metric; the best job is marked.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

RESULT = "result.json"


def write_result(
    run_dir: Path,
    label: str | None,
    status: str,
    metrics: dict[str, float] | None = None,
    params: dict[str, str] | None = None,
    error: str = "",
) -> None:
    if not run_dir.is_dir():  # a job that failed before training left no folder
        return
    finite = {k: v for k, v in (metrics or {}).items() if math.isfinite(v)}
    record = {
        "label": label or "",
        "params": params or {},
        "status": status,
        "val_loss": finite.get("val/loss"),
        "metrics": finite,
        "error": error,
    }
    (run_dir / RESULT).write_text(json.dumps(record))


def _rows(sweep_dir: Path) -> list[tuple[str, dict]]:
    rows = []
    for folder in sorted((p for p in sweep_dir.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)):
        path = folder / RESULT
        record = json.loads(path.read_text()) if path.is_file() else {"status": "no result"}
        rows.append((folder.name, record))
    return rows


def table(sweep_dir: Path) -> str:
    """Job, swept values, status, val loss, folder; `*` marks the lowest val loss."""
    rows = _rows(sweep_dir) if sweep_dir.is_dir() else []
    if not rows:
        return ""
    losses = [r.get("val_loss") for _, r in rows]
    finite = [v for v in losses if isinstance(v, float) and math.isfinite(v)]
    best = min(finite) if finite else None
    width = max(len(r.get("label", "")) for _, r in rows) or 1
    lines = [f"sweep {sweep_dir.name}: {len(rows)} jobs (val loss, lower is better; * best)"]
    for job, record in rows:
        loss = record.get("val_loss")
        shown = f"{loss:.4f}" if isinstance(loss, float) and math.isfinite(loss) else "n/a"
        mark = "*" if best is not None and loss == best else " "
        lines.append(
            f" {mark} {job:>3}  {record.get('label', ''):<{width}}  {record['status']:<9}  {shown:>8}  "
            f"{sweep_dir / job}"
        )
    return "\n".join(lines)


def read_result(run_dir: Path) -> dict | None:
    """A job's result.json, or None when the job wrote none (it died, or has not ended)."""
    try:
        record = json.loads((run_dir / RESULT).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and "status" in record else None


def set_status(run_dir: Path, status: str) -> None:
    """Rewrite a job's status (a search marks a trial it pruned)."""
    record = read_result(run_dir)
    if record is not None:
        (run_dir / RESULT).write_text(json.dumps({**record, "status": status}))
