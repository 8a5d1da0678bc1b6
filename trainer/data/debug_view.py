"""Show an encoded example with its label mask visible, to check that the right tokens are trained.

Why decode runs rather than tokens: the point is to read the text as the model sees it and see at a
glance where training starts and stops (the header untrained, the content and end-of-turn trained).
A preference pair is shown as its two halves (chosen, rejected), a KTO example with its verdict.
"""

from __future__ import annotations

from itertools import groupby
from typing import Any

from trainer.data.encoded import DESIRABLE, IGNORE, PAIR_START, UNDESIRABLE, Example, split_pair, unmarked

GREEN, DIM, RESET = "\x1b[32m", "\x1b[2m", "\x1b[0m"
OPEN, CLOSE = "«", "»"


def runs(example: Example, tokenizer: Any) -> list[tuple[bool, str]]:
    """(trained, text) for each run of consecutive tokens with the same mask, decoded with special
    tokens kept."""
    ids = [int(t) for t in example["input_ids"]]
    trained = [int(lab) != IGNORE for lab in example["labels"]]
    out, start = [], 0
    for flag, group in groupby(trained):
        n = len(list(group))
        out.append((flag, tokenizer.decode(ids[start : start + n], skip_special_tokens=False)))
        start += n
    return out


def show_example(example: Example, tokenizer: Any, color: bool) -> str:
    """The example's text with trained and masked tokens told apart.

    color=True: ANSI escapes, trained text green and masked text dim (prints as is to a terminal).
    color=False: plain text in which every masked (not trained) run is wrapped in « and »; everything
    outside the markers is trained. Runs are decoded one by one, so a character split across a
    boundary may show as a replacement character.
    """
    parts = []
    for trained, text in runs(example, tokenizer):
        if color:
            parts.append(f"{GREEN if trained else DIM}{text}{RESET}")
        else:
            parts.append(text if trained else f"{OPEN}{text}{CLOSE}")
    return "".join(parts)


def parts(example: Example) -> list[tuple[str, Example]]:
    """(title, sequence) to show, markers made IGNORE: a pair's two halves, a KTO example with its
    verdict, any other example as it is (title '')."""
    labels = [int(t) for t in example["labels"]]
    if PAIR_START in labels:
        chosen, rejected = split_pair(example)
        return [("chosen", chosen), ("rejected", rejected)]
    if labels and labels[0] in (DESIRABLE, UNDESIRABLE):
        title = "desirable" if labels[0] == DESIRABLE else "undesirable"
        return [(title, {"input_ids": list(example["input_ids"]), "labels": unmarked(labels)})]
    return [("", example)]
