"""`status JOB`, `list [--state ...] [--kind ...] [--limit N]`, `cancel JOB`."""

from __future__ import annotations

import argparse

from wildrobot.specs import JobKind, JobState

from .. import render
from ..parsing import UsageError
from .base import Command, Context


def _job_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_id", metavar="JOB", help="job id (as printed by submit or list)")


def _status(ctx: Context, args: argparse.Namespace) -> int:
    job = ctx.client.get(args.job_id)
    if ctx.json:
        ctx.print_json(job)
    else:
        ctx.out.print(render.job_detail(job))
    return 0


def _parse_states(values: list[str]) -> list[JobState]:
    states = []
    for value in (part for item in values for part in item.split(",") if part.strip()):
        try:
            states.append(JobState(value.strip().upper()))
        except ValueError:
            choices = ", ".join(s.value.lower() for s in JobState)
            raise UsageError(f"--state {value!r}: expected one of {choices}") from None
    return states


def _configure_list(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state",
        action="append",
        default=[],
        metavar="STATE",
        help="only jobs in this state (repeat or comma-separate: --state running,pending)",
    )
    parser.add_argument("--kind", choices=[k.value for k in JobKind], help="only jobs of this kind")
    parser.add_argument("--limit", type=int, default=20, help="at most N jobs (default 20)")


def _list(ctx: Context, args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    jobs = ctx.client.list(kind=args.kind, states=_parse_states(args.state), limit=args.limit)
    if ctx.json:
        ctx.print_json(jobs)
    elif not jobs:
        ctx.err.print("no jobs")
    else:
        ctx.out.print(render.jobs_table(jobs))
    return 0


def _cancel(ctx: Context, args: argparse.Namespace) -> int:
    job = ctx.client.cancel(args.job_id)
    if ctx.json:
        ctx.print_json(job)
    else:
        ctx.out.print(f"{job.job_id}: {render.state_text(job.state)}")
    return 0


STATUS = Command("status", "show one job", _job_arg, _status)
LIST = Command("list", "list jobs", _configure_list, _list)
CANCEL = Command("cancel", "cancel a job (it checkpoints and stops)", _job_arg, _cancel)
