"""Reading `<run folder>/metrics.jsonl` back (written by metrics_file.py's Lightning logger).

Apart from the writer so that readers (`trainer report`, plots of a sweep) need the standard library
only, not Lightning.
"""

from __future__ import annotations

import json
from pathlib import Path

FILE = "metrics.jsonl"


def read_history(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Each metric's points `(step, value)` in `run_dir/metrics.jsonl`, sorted by step, one per step:
    the last value logged for a step wins (a resumed run logs the steps it replays again). Lines that
    do not parse (the torn end of a killed write) and points without a step are skipped; no file, {}."""
    path = Path(run_dir) / FILE
    if not path.is_file():
        return {}
    points: dict[str, dict[int, float]] = {}
    for line in path.read_text().splitlines():
        try:
            point = json.loads(line)
        except ValueError:
            continue
        step = point.pop("step", None) if isinstance(point, dict) else None
        if not isinstance(step, int):
            continue
        for key, value in point.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                points.setdefault(key, {})[step] = float(value)
    return {key: sorted(by_step.items()) for key, by_step in points.items()}
