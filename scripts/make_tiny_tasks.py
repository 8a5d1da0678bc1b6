"""Generate the built-in instruction dataset (Alpaca format) deterministically.

Why synthetic: the default run must show real learning on a 2-core CPU in about two minutes with
no downloads. Every task here has exactly one right answer, so exact match on held-out examples is a
meaningful metric, and the tasks range from easy (copy, case change) to harder (reverse, sort, add),
so a tiny model improves steadily instead of saturating at once.

Run: python scripts/make_tiny_tasks.py  (writes trainer/assets/data/tiny_tasks/{train,validation}.json)
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

LETTERS = "abcdefghijklmnopqrstuvwxyz"
OUT_DIR = Path(__file__).resolve().parents[1] / "trainer" / "assets" / "data" / "tiny_tasks"


def _letters(rng: random.Random) -> list[str]:
    return rng.sample(LETTERS, rng.randint(3, 6))


def _uppercase(rng: random.Random) -> dict[str, str]:
    xs = _letters(rng)
    return {
        "instruction": "Write the letters in upper case.",
        "input": " ".join(xs),
        "output": " ".join(x.upper() for x in xs),
    }


def _reverse(rng: random.Random) -> dict[str, str]:
    xs = _letters(rng)
    return {
        "instruction": "Reverse the order of the letters.",
        "input": " ".join(xs),
        "output": " ".join(reversed(xs)),
    }


def _sort(rng: random.Random) -> dict[str, str]:
    xs = _letters(rng)
    return {
        "instruction": "Sort the letters alphabetically.",
        "input": " ".join(xs),
        "output": " ".join(sorted(xs)),
    }


def _first_last(rng: random.Random) -> dict[str, str]:
    xs = _letters(rng)
    which = rng.choice(["first", "last"])
    answer = xs[0] if which == "first" else xs[-1]
    return {"instruction": f"What is the {which} letter?", "input": " ".join(xs), "output": answer}


def _count(rng: random.Random) -> dict[str, str]:
    xs = _letters(rng)
    return {"instruction": "How many letters are there?", "input": " ".join(xs), "output": str(len(xs))}


def _add(rng: random.Random) -> dict[str, str]:
    a, b = rng.randint(0, 49), rng.randint(0, 49)
    return {"instruction": "Add the two numbers.", "input": f"{a} + {b}", "output": str(a + b)}


TASKS: dict[str, Callable[[random.Random], dict[str, str]]] = {
    "uppercase": _uppercase,
    "reverse": _reverse,
    "sort": _sort,
    "first_last": _first_last,
    "count": _count,
    "add": _add,
}


def generate(n: int, seed: int, exclude: set[tuple[str, str]] | None = None) -> list[dict[str, str]]:
    """`n` examples cycling over the tasks; `exclude` keeps validation prompts out of training."""
    rng = random.Random(seed)
    names = sorted(TASKS)
    rows: list[dict[str, str]] = []
    seen = set(exclude or ())
    while len(rows) < n:
        name = names[len(rows) % len(names)]
        row = TASKS[name](rng)
        key = (row["instruction"], row["input"])
        if key in seen:
            continue
        seen.add(key)
        rows.append({**row, "task": name})
    return rows


def main() -> None:
    validation = generate(240, seed=1)
    train = generate(6000, seed=2, exclude={(r["instruction"], r["input"]) for r in validation})
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for split, rows in (("train", train), ("validation", validation)):
        path = OUT_DIR / f"{split}.json"
        lines = ",\n".join(json.dumps(r, ensure_ascii=False) for r in rows)
        path.write_text(f"[\n{lines}\n]\n", encoding="utf-8")
        print(f"wrote {len(rows)} examples to {path}")


if __name__ == "__main__":
    main()
