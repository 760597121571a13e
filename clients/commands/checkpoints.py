"""`checkpoints JOB`, `download JOB [--step N|latest|best] -o DIR` (a checkpoint) and
`download JOB NAME -o PATH` (one file `artifacts JOB` lists: exports, inverse-dynamics outputs)."""

from __future__ import annotations

import argparse

from .. import render
from ..parsing import UsageError, parse_step
from .base import Command, Context


def _configure_list(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_id", metavar="JOB")


def _list(ctx: Context, args: argparse.Namespace) -> int:
    checkpoints = ctx.client.list_checkpoints(args.job_id)
    if ctx.json:
        ctx.print_json(checkpoints)
    elif not checkpoints:
        ctx.err.print(f"{args.job_id} has no checkpoints yet")
    else:
        ctx.out.print(render.checkpoints_table(checkpoints))
    return 0


def _configure_download(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_id", metavar="JOB")
    parser.add_argument(
        "name",
        metavar="NAME",
        nargs="?",
        default=None,
        help="a file `artifacts JOB` lists (then -o is the file or a folder to put it in)",
    )
    parser.add_argument(
        "--step", default="latest", help="env step of the checkpoint, latest, or best"
    )
    parser.add_argument("-o", "--out", required=True, metavar="DIR", help="folder to extract into")


def _download(ctx: Context, args: argparse.Namespace) -> int:
    if args.name is not None:
        from pathlib import Path

        out = Path(args.out)
        if out.is_dir():
            out = out / Path(args.name).name
        path = ctx.client.download_file(args.job_id, args.name, out)
        if ctx.json:
            ctx.print_json({"job_id": args.job_id, "name": args.name, "out": str(path)})
        else:
            ctx.out.print(f"{args.name} -> {path}")
        return 0
    try:
        step = parse_step(args.step)
    except UsageError as exc:
        raise UsageError(f"--step: {exc}") from None
    result = ctx.client.download_checkpoint(args.job_id, out_dir=args.out, step=step)
    if ctx.json:
        ctx.print_json(result)
    else:
        size = render.format_bytes(result.checkpoint.size_bytes)
        ctx.out.print(
            f"checkpoint at step {result.checkpoint.step:,} ({size}) extracted to {result.path}"
        )
    return 0


CHECKPOINTS = Command("checkpoints", "list a job's checkpoints", _configure_list, _list)
DOWNLOAD = Command(
    "download",
    "download a checkpoint (extracted) or one file of a job",
    _configure_download,
    _download,
)
