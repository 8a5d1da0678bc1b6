"""report.html: the sweep's report as one self-contained page.

The charts are embedded as base64 `data:` images and the style is inline, so the page is a single file
that opens offline, survives being mailed or attached to a ticket, and needs no server.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path

from trainer.sweeps.results import Objective, Row

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.best { font-weight: bold; background: #fff6d5; }
figure { margin: 1.5em 0; }
img { max-width: 100%; border: 1px solid #eee; }
.notes { color: #555; }
"""


def _table(goal: Objective, found: Sequence[Row], trials: Mapping[str, int]) -> str:
    """The text table's columns, with the Optuna trial of each job when there is a study."""
    head = ["", "job", "swept values", "status", escape(goal.metric), "folder", "error"]
    head += ["Optuna trial"] if trials else []
    lines = ["<table>", "<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for row in found:
        cells = [
            "*" if row.best else "",
            escape(row.job),
            escape(row.label),
            escape(row.status),
            row.shown,
            escape(str(row.folder)),
            escape(str(row.record.get("error") or "")),
        ]
        cells += [str(trials.get(row.job, ""))] if trials else []
        tds = "".join(
            f'<td class="num">{c}</td>' if i in (1, 4) else f"<td>{c}</td>" for i, c in enumerate(cells)
        )
        lines.append(f"<tr{' class=best' if row.best else ''}>{tds}</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def _figure(png: Path) -> str:
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    name = escape(png.name)
    image = f'<img src="data:image/png;base64,{data}" alt="{name}">'
    return f"<figure>{image}<figcaption>{name}</figcaption></figure>"


def write_page(
    path: Path,
    sweep_dir: Path,
    goal: Objective,
    found: Sequence[Row],
    pngs: Sequence[Path],
    notes: Sequence[str],
    trials: Mapping[str, int],
) -> None:
    """The page: title (the sweep folder), the table with the best job marked, notes, every chart."""
    title = escape(str(sweep_dir.resolve()))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{title}</title><style>{STYLE}</style></head><body>",
        f"<h1>{title}</h1>",
        f"<p>{len(found)} jobs; objective {escape(goal.header)}; * best finished job.</p>",
        _table(goal, found, trials),
    ]
    if notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>")
    parts += [_figure(png) for png in pngs]
    parts.append("</body></html>")
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
