"""`export JOB[:STEP] -o policy.onnx` and `video JOB[:STEP] -o rollout.mp4`."""

from __future__ import annotations

import argparse

from wildrobot.specs import MAX_VIDEO_SECONDS

from .. import render
from ..parsing import UsageError, parse_step
from ..types import Step
from .base import Command, Context


def parse_job_step(text: str) -> tuple[str, Step]:
    """ "JOB" or "JOB:STEP" (STEP a count like 4096 or 4k, "latest" or "best") -> (job_id, step)."""
    job_id, _, step = text.partition(":")
    if not job_id:
        raise UsageError(f"{text!r}: expected JOB or JOB:STEP")
    try:
        return job_id, parse_step(step or "latest")
    except UsageError as exc:
        raise UsageError(f"{text!r}: step {exc}") from None


def _configure(default_out: str, video: bool):
    def configure(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("job", metavar="JOB[:STEP]", help="job id, optionally :env step, :latest or :best")
        parser.add_argument(
            "-o", "--out", default=default_out, help=f"file (default {default_out})"
        )
        parser.add_argument(
            "--server-only",
            action="store_true",
            help="fail if the server has none rather than making it here from the checkpoint",
        )
        if video:
            parser.add_argument(
                "--seconds", type=float, default=4.0, help="length when made here (default 4)"
            )

    return configure


def _run(kind: str):
    def run(ctx: Context, args: argparse.Namespace) -> int:
        job_id, step = parse_job_step(args.job)
        seconds = getattr(args, "seconds", 4.0)
        if not 0 < seconds <= MAX_VIDEO_SECONDS:
            raise UsageError(f"--seconds must be in (0, {MAX_VIDEO_SECONDS:g}]")
        if args.server_only:
            result = ctx.client.download_artifact(job_id, kind, args.out, step)
        else:
            result = ctx.client.export(job_id, kind, args.out, step, video_seconds=seconds)
        if ctx.json:
            ctx.print_json(result)
        else:
            where = "made here from the checkpoint" if result.made_here else "from the server"
            ctx.out.print(
                f"{kind} of {job_id} at step {result.checkpoint.step:,} "
                f"({render.format_bytes(result.size_bytes)}, {where}) -> {result.path}"
            )
        return 0

    return run


EXPORT = Command(
    "export",
    "write a checkpoint's policy as ONNX (normalizer included, deterministic action)",
    _configure("policy.onnx", video=False),
    _run("onnx"),
)
VIDEO = Command(
    "video",
    "write an MP4 of a checkpoint's policy on its task",
    _configure("rollout.mp4", video=True),
    _run("video"),
)
