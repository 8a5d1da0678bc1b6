"""`trainer preprocess <overrides> [--debug N] [--plain]`: build the tokenized-data cache now.

Composes and validates the config exactly as training does, then reads, encodes, mixes and splits the
data into the cache (e.g. on a CPU node before a GPU job: the training run then loads it in a fraction
of the time) and prints what was read, kept and dropped. `--debug N` also prints the first N training
examples with trained and masked tokens shown apart (colour in a terminal; `--plain` or a pipe: «masked»
markers). No model is built and Hydra creates no run folder.
"""

from __future__ import annotations

import sys

from trainer.boundary import Invocation, report_and_exit
from trainer.commands.usage import run_command
from trainer.errors import UserError

USAGE = "trainer preprocess [overrides ...] [--debug N] [--plain]"


def _switches(args: list[str]) -> tuple[list[str], int, bool]:
    """Our own switches, taken out before Hydra sees the overrides."""
    rest, debug, plain = [], 0, False
    it = iter(args)
    for arg in it:
        if arg == "--plain":
            plain = True
        elif arg == "--debug" or arg.startswith("--debug="):
            value = arg.partition("=")[2] if "=" in arg else next(it, "")
            if not value.isdigit():
                raise UserError(f"--debug needs a number of examples, got {value!r}", hint=USAGE)
            debug = int(value)
        else:
            rest.append(arg)
    return rest, debug, plain


def preprocess(inv: Invocation, debug: int, color: bool) -> None:
    from rich.console import Console
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    from trainer.data.debug_view import parts, show_example
    from trainer.data.prepare import prepare_data
    from trainer.models.build import load_tokenizer

    cfg = inv.cfg
    tokenizer = load_tokenizer(cfg.model)
    data = prepare_data(cfg.data, tokenizer, cfg.data.seed_or(cfg.run.seed))
    console = Console(soft_wrap=False, highlight=False, no_color=not color)
    examples = data.examples
    for i in range(min(debug, len(examples))):
        console.rule(f"training example {i} ({len(examples[i]['input_ids'])} tokens)")
        for title, part in parts(examples[i]):
            if title:
                console.print(f"[{title}, {len(part['input_ids'])} tokens]", markup=False)
            # The data's own text may look like markup ("[/INST]"): print it as text, colours from ANSI.
            console.print(Text.from_ansi(show_example(part, tokenizer, color=color)))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan", no_wrap=True)
    grid.add_column()
    for key, value in data.summary.rows():
        grid.add_row(key, value, style=None)
    console.print(Panel(grid, title="trainer preprocess", title_align="left", expand=False))


def main(args: list[str]) -> None:
    try:
        rest, debug, plain = _switches(args)
    except UserError as err:
        report_and_exit(err)
    color = not plain and sys.stdout.isatty()
    run_command("preprocess", __doc__, USAGE, rest, lambda inv: preprocess(inv, debug, color))
