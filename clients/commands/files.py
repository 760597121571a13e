"""`artifacts JOB` (the files of a job the server can send) and `upload TRIAL [--name NAME]`
(a trial file into this tenant's inputs, for an inverse-dynamics job's trial_names, or an .npz
motion clip for an amp job's motions)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..parsing import UsageError
from .base import Command, Context


def _configure_list(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_id", metavar="JOB")


def _list(ctx: Context, args: argparse.Namespace) -> int:
    files = ctx.client.list_artifacts(args.job_id)
    if ctx.json:
        ctx.print_json(files)
    elif not files:
        ctx.err.print(f"{args.job_id} has no files yet")
    else:
        for f in files:
            ctx.out.print(f"{f['name']}  {f['kind']}  {f['size_bytes']} B  step {f['step']}")
    return 0


def _configure_upload(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "trial",
        metavar="TRIAL",
        help=".npz or .csv trial file, or .npz motion clip (16 MiB at most)",
    )
    parser.add_argument("--name", default=None, help="name in your inputs (default: file name)")


def _upload(ctx: Context, args: argparse.Namespace) -> int:
    path = Path(args.trial)
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    info = ctx.client.upload_trial(path, args.name)
    if ctx.json:
        ctx.print_json(info)
    else:
        ctx.out.print(f"{path} -> {info['name']} ({info['size_bytes']} B)")
    return 0


ARTIFACTS = Command(
    "artifacts",
    "list a job's files (download one with `download JOB NAME`)",
    _configure_list,
    _list,
)
UPLOAD = Command(
    "upload", "upload a trial or motion file into your inputs", _configure_upload, _upload
)
