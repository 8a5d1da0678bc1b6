"""`trainer report SWEEP_FOLDER`: the table of a sweep's jobs and, in `<sweep folder>/report/`, its
charts (loss curves of every job, the objective against each swept value, Optuna's charts of a search)
and report.html, one page with all of them that opens offline.

    trainer report outputs/default/sweeps/20261129-101500

Read from the folder alone (no MLflow, no torch or Lightning): it works on a sweep still running, one copied
off a cluster, or one run with tracker=none.
"""

from __future__ import annotations

from trainer.commands.usage import wants_help

USAGE = "trainer report SWEEP_FOLDER"


def main(args: list[str]) -> None:
    from trainer.boundary import USER_ERRORS, report_and_exit
    from trainer.errors import UserError

    if wants_help(args):
        print(f"usage: {USAGE}\n\n{(__doc__ or '').strip()}")
        return
    try:
        if len(args) != 1 or args[0].startswith("-"):
            raise UserError(f"usage: {USAGE} (got: {' '.join(args) or 'no argument'})")
        from trainer.sweeps.report import sweep_folder, write_report

        report = write_report(sweep_folder(args[0]))
    except USER_ERRORS as err:
        report_and_exit(err)
    print(report.table)
    for note in report.notes:
        print(f"note: {note}")
    for path in report.written:
        print(f"wrote {path}")
    if report.dashboard:
        print(report.dashboard)
