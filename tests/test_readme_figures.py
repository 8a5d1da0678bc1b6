"""The README's figures of the default run are the stored output of benchmarks/default_run.py.

The section between the markers is generated from benchmarks/results/default_run.json by the script's
own `render`; if the README or the stored figures change alone, this fails. Rerun
`.venv/bin/python benchmarks/default_run.py --seeds 3 --write` after changing the default run.
"""

from __future__ import annotations

import importlib.util
import json

from tests.conftest import ROOT

SCRIPT = ROOT / "benchmarks" / "default_run.py"


def _script():
    spec = importlib.util.spec_from_file_location("default_run", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_shows_the_stored_figures() -> None:
    script = _script()
    results = json.loads(script.RESULTS.read_text())
    readme = (ROOT / "README.md").read_text()
    start, end = readme.index(script.START), readme.index(script.END) + len(script.END)
    assert readme[start:end] == script.render(results), "stale: rerun benchmarks/default_run.py --write"


def test_the_stored_figures_meet_the_learning_floor() -> None:
    script = _script()
    results = json.loads(script.RESULTS.read_text())
    ems = sorted(seed["exact_match"][1] for seed in results["seeds"])
    assert len(ems) >= 3 and ems[len(ems) // 2] >= script.FLOOR_MEDIAN and ems[0] >= script.FLOOR_WORST
    assert results["summary"] == script.summary(results["seeds"])
    for seed in results["seeds"]:  # exact match is the per-task hits, and greedy decoding agrees
        hits = sum(h for h, _ in seed["per_task"].values())
        total = sum(n for _, n in seed["per_task"].values())
        assert round(seed["exact_match"][1] * total) == hits
    first = results["seeds"][0]
    assert first["greedy_hits"] == round(first["exact_match"][1] * 240)
