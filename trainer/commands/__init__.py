"""The commands of `trainer`: one module each, every one a thin entry over the boundary and the
packages below it. `trainer <command> --help` prints the command's own help.

A new command is a module here with `HELP` (a one-line summary, then the usage) and `main(args)`, and
one line in `COMMANDS`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class Command:
    name: str
    module: str
    summary: str

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)


COMMANDS = {
    c.name: c
    for c in (
        Command("train", "trainer.commands.train", "train a model (the default: `trainer <overrides>`)"),
        Command("plan", "trainer.commands.plan", "dry run: groups, batch arithmetic, steps, params, memory"),
        Command("preprocess", "trainer.commands.preprocess", "build the tokenized-data cache; --debug N"),
        Command("generate", "trainer.commands.generate", "complete prompts with a trained model"),
        Command("chat", "trainer.commands.chat", "talk with a trained model in the terminal"),
        Command("evaluate", "trainer.commands.evaluate", "score a model: loss, perplexity, exact match"),
        Command("merge", "trainer.commands.merge", "fold a LoRA/DoRA adapter into a full model"),
        Command(
            "submit", "trainer.commands.submit", "send a run to Slurm: sbatch script in its folder, job id"
        ),
        Command(
            "status", "trainer.commands.status", "a submitted run's Slurm state, elapsed time, last step"
        ),
        Command("cancel", "trainer.commands.cancel", "cancel a submitted run's Slurm job"),
        Command("report", "trainer.commands.report", "a sweep's table, charts and one HTML page (report/)"),
        Command(
            "schema", "trainer.commands.schema", "the config schema: JSON Schema or the Markdown reference"
        ),
    )
}
