"""Generate the built-in preference data (pairs and KTO examples) from the tiny tasks, deterministically.

Why from the tiny tasks: a model SFT-trained on them can then be preference-tuned on the same prompts,
and every task has one right answer, so "chosen = the right answer, rejected = a wrong one" is a true
preference and reward accuracy on held-out pairs is a meaningful figure. The wrong answer is one of the
distractors `make_tiny_tasks.with_choices` draws for multiple choice: the right answer of another
example of the same task, so it looks like an answer (same length and alphabet) and only reading the
input tells the two apart.

Validation pairs are made from the tiny tasks' validation examples (held out from SFT training too);
training pairs from newly generated examples, none of whose prompts is a validation prompt. The KTO
set is the same pairs unpaired: alternately the chosen answer (desirable) and the rejected one
(undesirable), so half of each.

Run: python scripts/make_tiny_prefs.py [--out ASSETS]  (writes ASSETS/data/tiny_prefs/{train,validation}.json
and ASSETS/data/tiny_kto/{train,validation}.json; ASSETS defaults to trainer/assets)
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from make_tiny_tasks import ASSETS, generate, with_choices, write_json_list

TRAIN_PAIRS = 3000
VAL_PAIRS = 240  # = the tiny tasks' validation examples


def pairs(rows: list[dict[str, str]], seed: int) -> list[dict[str, str]]:
    """Each row as {instruction, input, chosen, rejected, task}: rejected is a seeded distractor; the
    order is shuffled so the tasks are mixed as in the tiny tasks."""
    out = []
    for row in with_choices(rows, len(rows), seed):
        wrong = [c for c in row["choices"] if c != row["output"]]  # type: ignore[union-attr]
        out.append(
            {
                "instruction": row["instruction"],
                "input": row["input"],
                "chosen": row["output"],
                "rejected": wrong[0],
                "task": row["task"],
            }
        )
    random.Random(seed).shuffle(out)
    return out


def unpaired(rows: list[dict[str, str]]) -> list[dict[str, object]]:
    """KTO examples: pair i gives its chosen answer (desirable) when i is even, its rejected one
    (undesirable) when odd."""
    return [
        {
            "instruction": r["instruction"],
            "input": r["input"],
            "completion": r["chosen"] if i % 2 == 0 else r["rejected"],
            "label": i % 2 == 0,
            "task": r["task"],
        }
        for i, r in enumerate(rows)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ASSETS, help="the assets folder to write data/ into")
    out = parser.parse_args().out
    validation = generate(VAL_PAIRS, seed=1)  # exactly the tiny tasks' validation examples
    train = generate(TRAIN_PAIRS, seed=5, exclude={(r["instruction"], r["input"]) for r in validation})
    made = {"validation": pairs(validation, seed=6), "train": pairs(train, seed=7)}
    for name, rows in (("tiny_prefs", made), ("tiny_kto", {k: unpaired(v) for k, v in made.items()})):
        folder = out / "data" / name
        folder.mkdir(parents=True, exist_ok=True)
        for split, records in rows.items():
            write_json_list(folder / f"{split}.json", records)


if __name__ == "__main__":
    main()
