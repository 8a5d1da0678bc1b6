"""`python -m trainer.preprocess <overrides> [--debug N] [--plain]`: build the tokenized-data cache now.

Composes and validates the config exactly as training does, then reads, encodes, mixes and splits the
data into the cache (e.g. on a CPU node before a GPU job: the training run then loads it in a fraction
of the time) and prints what was read, kept and dropped. `--debug N` also prints the first N training
examples with trained and masked tokens shown apart (colour in a terminal; `--plain` or a pipe: «masked»
markers). No model is built and Hydra creates no run folder.
"""

from __future__ import annotations

import sys

from trainer.config import TrainConfig
from trainer.errors import UserError
from trainer.quiet_entry import quiet_main

USAGE = "usage: python -m trainer.preprocess [overrides ...] [--debug N] [--plain]"


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
        elif arg in ("-h", "--help"):
            print(__doc__.strip() + "\n\n" + USAGE)
            sys.exit(0)
        else:
            rest.append(arg)
    return rest, debug, plain


def preprocess(cfg: TrainConfig, debug: int, color: bool) -> None:
    from rich.console import Console
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    from trainer.data.debug_view import show_example
    from trainer.data.prepare import prepare_data
    from trainer.models.build import load_tokenizer
    from trainer.summary import data_rows

    tokenizer = load_tokenizer(cfg.model)
    data = prepare_data(cfg.data, tokenizer, cfg.data.seed_or(cfg.run.seed))
    console = Console(soft_wrap=False, highlight=False, no_color=not color)
    examples = getattr(data.train, "examples", data.train)  # packed rows keep their examples
    for i in range(min(debug, len(examples))):
        console.rule(f"training example {i} ({len(examples[i]['input_ids'])} tokens)")
        # The data's own text may look like markup ("[/INST]"): print it as text, colours from ANSI codes.
        console.print(Text.from_ansi(show_example(examples[i], tokenizer, color=color)))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan", no_wrap=True)
    grid.add_column()
    for key, value in data_rows(cfg, data.summary):
        grid.add_row(key, value, style=None)
    console.print(Panel(grid, title="trainer preprocess", title_align="left", expand=False))


def main() -> None:
    try:
        args, debug, plain = _switches(sys.argv[1:])
    except UserError as err:
        from trainer.boundary import report_and_exit

        report_and_exit(err)
    color = not plain and sys.stdout.isatty()
    quiet_main(lambda cfg, _choices: preprocess(cfg, debug, color), "trainer.preprocess", args)


if __name__ == "__main__":
    main()
