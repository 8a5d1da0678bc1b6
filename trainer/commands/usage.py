"""What the commands that do not train share: their own `--help`, and the run of one command (compose
and validate through the boundary, set the process up, report user mistakes as exit 2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trainer.boundary import USER_ERRORS, Invocation, compose, report_and_exit

COMMON = """\
Arguments are the overrides of training (GROUP=OPTION, KEY=VALUE; `trainer --help` lists them all) and
--config-dir DIR for config folders of one's own. One run: no sweep (-m), no run folder."""


def wants_help(args: list[str]) -> bool:
    return bool({"-h", "--help"} & set(args))


def infer_keys(command: str) -> list[str]:
    """The `infer.*` keys a command reads: `source`, and those documented as `<command>: ...` (or
    `generate, chat: ...` for keys two commands share)."""
    import json
    import textwrap

    from trainer.config.infer import InferConfig

    lines = []
    for name, info in InferConfig.model_fields.items():
        readers, _, rest = (info.description or "").partition(": ")
        if name == "source" or command in readers.split(", "):
            default = json.dumps(info.get_default(call_default_factory=True))
            lines.append(f"  infer.{name}={default}")
            text = info.description if name == "source" else rest
            lines += textwrap.wrap(text or "", 100, initial_indent=" " * 6, subsequent_indent=" " * 6)
    return lines


def help_text(name: str, doc: str, usage: str, keys: str | None) -> str:
    parts = [f"usage: {usage}", "", doc.strip(), ""]
    if keys is not None:
        parts += ["Keys:", *infer_keys(keys), ""]
    parts.append(COMMON)
    return "\n".join(parts)


def run_command(
    name: str,
    doc: str | None,
    usage: str,
    args: list[str],
    task: Callable[[Invocation], Any],
    infer_keys: str | None = None,
) -> None:
    """`trainer <name> <args>`: help, or compose -> validate -> `task(invocation)`."""
    if wants_help(args):
        print(help_text(name, doc or "", usage, infer_keys))
        return
    try:
        inv = compose(args, f"trainer {name}")
        from trainer.commands.process import setup

        setup(inv.cfg.on_gpu)
        task(inv)
    except USER_ERRORS as err:
        report_and_exit(err)


def slurm_job(
    args: list[str], usage: str, doc: str | None, act: Callable[[str], Any]
) -> tuple[str, Any, Any] | None:
    """`trainer status|cancel [RUN_FOLDER | JOB_ID]`: help (None), or the job the argument names, its run
    folder and what `act(job_id)` returned; a user mistake (no such run, no Slurm here) exits 2."""
    if wants_help(args):
        print(f"usage: {usage}\n\n{doc or ''}")
        return None
    from trainer.launch.slurm import find_job

    try:
        job_id, run_dir = find_job(args[0] if args else None)
        return job_id, run_dir, act(job_id)
    except USER_ERRORS as err:
        report_and_exit(err)
