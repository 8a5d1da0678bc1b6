"""One-screen panels, the shape every command reports in, and the same rows in the log file."""

from __future__ import annotations

import logging

log = logging.getLogger("trainer")


def panel(title: str, rows: list[tuple[str, str]], log_it: bool = False) -> None:
    """A titled two-column panel on stdout; `log_it` also writes the rows to the run's log."""
    from rich.console import Console
    from rich.panel import Panel
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan", no_wrap=True)
    grid.add_column()
    for key, value in rows:
        grid.add_row(key, value)
    Console(soft_wrap=False, highlight=False).print(
        Panel(grid, title=title, title_align="left", expand=False)
    )
    if log_it:
        log.info("%s\n%s", title, "\n".join(f"  {k:<10} {v}" for k, v in rows))


def progress(line: str) -> None:
    """A plain progress line: always to the run's log, and to stdout when stdout is not a terminal (a
    Slurm log, nohup, a pipe), where no progress bar is drawn. In a terminal the bar shows it."""
    import sys

    log.info("%s", line)
    if not sys.stdout.isatty():
        print(line, flush=True)


def table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    """A titled table on stdout, one row per line (results of several things measured alike)."""
    from rich.console import Console
    from rich.table import Table

    grid = Table(title=title, title_justify="left")
    for i, name in enumerate(columns):
        grid.add_column(name, style="bold cyan" if i == 0 else None, no_wrap=True)
    for row in rows:
        grid.add_row(*row)
    Console(soft_wrap=False, highlight=False).print(grid)
