"""`trainer` (and `python -m trainer`): the command line, dispatched to the commands.

    trainer [GROUP=OPTION ...] [KEY=VALUE ...]     train (a Hydra app: -m sweeps, --help, -sc completion,
                                                   --config-dir DIR for configs of one's own)
    trainer <command> [args ...]                   plan, preprocess, generate, chat, evaluate, merge,
                                                   submit, status, cancel, report, schema

A word where a command or an override belongs (`trainer serve`, `trainer generat`) is an unknown
command, reported with the commands and the closest one, not as Hydra's "missing EQUAL".
"""

from __future__ import annotations

import difflib
import os
import sys

from trainer.commands import COMMANDS
from trainer.errors import UserError


def commands_help() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["Commands (trainer <command> --help for each):"]
    lines += [f"  {name:<{width}}  {c.summary}" for name, c in COMMANDS.items()]
    return "\n".join(lines)


def _is_word(arg: str) -> bool:
    """A bare word: not a flag, not an override (KEY=VALUE, +KEY=..., ~KEY)."""
    return not arg.startswith(("-", "+", "~")) and "=" not in arg


def _unknown_command(word: str) -> UserError:
    close = difflib.get_close_matches(word, list(COMMANDS), n=1, cutoff=0.7)
    hint = f"did you mean `trainer {close[0]}`?" if close else "overrides are KEY=VALUE or GROUP=OPTION"
    return UserError(f"unknown command '{word}' (commands: {', '.join(COMMANDS)})", hint=hint)


def _completion_query(args: list[str]) -> bool:
    return bool({"-sc", "--shell-completion"} & set(args)) and any(a.startswith("query=") for a in args)


def _complete_commands() -> None:
    """Shell completion runs as `trainer -sc query=SHELL` with the line in COMP_LINE. Hydra completes
    groups and keys of the training config; commands are ours: offered while the first word is typed,
    and taken out of the line after it, so `trainer plan mo<TAB>` completes like `trainer mo<TAB>`."""
    line = os.environ.get("COMP_LINE", "")
    words = line.split()
    typing_first = len(words) == 1 and line.endswith(" ") or len(words) == 2 and not line.endswith(" ")
    if typing_first:
        partial = words[1] if len(words) == 2 else ""
        if "=" not in partial:
            print("\n".join(name for name in COMMANDS if name.startswith(partial)))
    elif len(words) >= 2 and words[1] in COMMANDS:
        os.environ["COMP_LINE"] = line.replace(f" {words[1]}", "", 1)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    from trainer.boundary import report_and_exit

    if _completion_query(args):
        _complete_commands()
    elif args and args[0] in COMMANDS:
        command = COMMANDS[args.pop(0)]
        if command.name != "train":
            command.load().main(args)
            return
    elif args and _is_word(args[0]):
        report_and_exit(_unknown_command(args[0]))
    if {"-h", "--help"} & set(args):
        print(commands_help() + "\n")
    from trainer.commands import train

    train.main(args)
