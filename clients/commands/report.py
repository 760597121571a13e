"""`report JOB`: the table of a finished tta_eval job's report (--json: the whole report)."""

from __future__ import annotations

import argparse

from wildrobot.tta_table import table

from .base import Command, Context


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_id", metavar="JOB", help="a tta_eval job")


def _run(ctx: Context, args: argparse.Namespace) -> int:
    report = ctx.client.tta_report(args.job_id)
    if ctx.json:
        ctx.print_json(report)
        return 0
    ctx.out.print(
        f"{report['task']} checkpoint {report['checkpoint_job_id']}:{report['checkpoint_step']}, "
        f"{report['settings']['mode']} mode",
        markup=False,
    )
    ctx.out.print(table(report), markup=False, highlight=False)
    return 0


COMMAND = Command("report", "print the report of a tta_eval job", _configure, _run)
