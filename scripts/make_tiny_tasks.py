"""Generate the built-in instruction dataset (Alpaca format) deterministically.

Why synthetic: the default run must show real learning on a 2-core CPU in about two minutes with
no downloads. Every task here has exactly one right answer, so exact match on held-out examples is a
meaningful metric, and the tasks range from easy (copy, case change) to harder (reverse, sort, add),
so a tiny model improves steadily instead of saturating at once.

It also writes the two lm-evaluation-harness tasks shipped with `trainer evaluate infer.tasks=[...]`
(trainer/assets/lm_eval_tasks/): a few held-out validation examples per task, each with three wrong
choices for multiple choice, and one training example per task for few-shot prompts. The wrong choices
are right answers of other examples of the same task, so they look like answers (the same length and
alphabet) and only reading the input tells them apart.

Run: python scripts/make_tiny_tasks.py  (writes trainer/assets/data/tiny_tasks/{train,validation}.json
and trainer/assets/lm_eval_tasks/tiny_tasks{,_fewshot}.jsonl)
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

LETTERS = "abcdefghijklmnopqrstuvwxyz"
ASSETS = Path(__file__).resolve().parents[1] / "trainer" / "assets"
OUT_DIR = ASSETS / "data" / "tiny_tasks"
LM_EVAL_DIR = ASSETS / "lm_eval_tasks"
PER_TASK = 6  # lm-eval test documents per task: 36 in all, a few seconds on a CPU


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


def with_choices(rows: list[dict[str, str]], per_task: int, seed: int) -> list[dict[str, object]]:
    """The first `per_task` rows of each task, each with its answer among three others of its task."""
    rng = random.Random(seed)
    out: list[dict[str, object]] = []
    for name in sorted(TASKS):
        same = [r for r in rows if r["task"] == name]
        for row in same[:per_task]:
            others = sorted({r["output"] for r in same} - {row["output"]})
            choices = [row["output"], *rng.sample(others, 3)]
            rng.shuffle(choices)
            out.append({**row, "choices": choices, "label": choices.index(row["output"])})
    return out


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"wrote {len(rows)} records to {path}")


def write_json_list(path: Path, rows: list[dict[str, object]]) -> None:
    """A JSON list with one record per line: loads as one array, diffs line by line."""
    lines = ",\n".join(json.dumps(r, ensure_ascii=False) for r in rows)
    path.write_text(f"[\n{lines}\n]\n", encoding="utf-8")
    print(f"wrote {len(rows)} examples to {path}")


def main() -> None:
    validation = generate(240, seed=1)
    train = generate(6000, seed=2, exclude={(r["instruction"], r["input"]) for r in validation})
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for split, rows in (("train", train), ("validation", validation)):
        write_json_list(OUT_DIR / f"{split}.json", rows)
    write_jsonl(LM_EVAL_DIR / "tiny_tasks.jsonl", with_choices(validation, PER_TASK, seed=3))
    write_jsonl(LM_EVAL_DIR / "tiny_tasks_fewshot.jsonl", with_choices(train, 1, seed=4))


if __name__ == "__main__":
    main()
