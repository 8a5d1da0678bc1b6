"""Every benchmark script runs at its smallest size (`--smoke`), so none rots when the code changes
(default_run.py and preference_run.py: at full size, in tests/test_default_run.py).

Only that it runs to the end and prints its ratios is checked: the figures themselves are read by
people, never asserted (benchmarks/README.md).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, cli_env

pytestmark = pytest.mark.slow

# default_run.py and preference_run.py (DPO from the default run's model) run at full size in
# tests/test_default_run.py (the default run's learning test), so their smoke sizes would only repeat it.
FULL_SIZE_ELSEWHERE = {"default_run", "preference_run"}
SCRIPTS = sorted(p for p in (ROOT / "benchmarks").glob("*.py") if p.stem not in FULL_SIZE_ELSEWHERE)
# A line each script prints only once it has measured everything (a new script adds its own here).
LAST_FIGURES = {
    "train_throughput": "an unreachable hub id (model=llama, no hub) reported",
    "data_pipeline": "hit / build",
    "busy_machine": "busy/idle",
    "slurm_jobs": "requeue downtime",
    "loss_memory": "chunked / plain",
}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_benchmark_runs_at_its_smallest_size(script: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(script), "--smoke"],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert LAST_FIGURES[script.stem] in proc.stdout, proc.stdout[-2000:]
