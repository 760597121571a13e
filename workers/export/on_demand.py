"""Making an export from a checkpoint directory on request (the client's fallback when the
server has none for that checkpoint: only a job's final checkpoint gets them)."""

from __future__ import annotations

from pathlib import Path

from wildrobot.exports import ArtifactKind

from .observation_layout import LayoutError
from .onnx_policy import ExportError
from .video import VideoError

# What make_export raises for a checkpoint it cannot export (the client reports these).
EXPORT_ERRORS = (ExportError, LayoutError, VideoError)


def make_export(
    checkpoint_dir: Path, kind: str, out_path: str | Path, job_id: str, video_seconds: float
) -> Path:
    """Writes the ONNX policy or the rollout video of `checkpoint_dir` to out_path."""
    out = Path(out_path)
    if ArtifactKind(kind) is ArtifactKind.ONNX:
        from .onnx_policy import export_policy

        return export_policy(checkpoint_dir, out, job_id=job_id)
    from .video import render_video

    render_video(checkpoint_dir, out, seconds=video_seconds)
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m wildrobot.workers.export.on_demand CHECKPOINT_DIR KIND OUT JOB_ID SECONDS`.

    The client's fallback runs this as a process: the client package never imports the workers
    (the import-linter contract in pyproject.toml). Exit 0 with the written path on stdout; exit
    2 with the reason on stderr for a checkpoint this cannot export."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="wildrobot.workers.export.on_demand")
    parser.add_argument("checkpoint_dir", type=Path)
    parser.add_argument("kind", choices=[kind.value for kind in ArtifactKind])
    parser.add_argument("out_path", type=Path)
    parser.add_argument("job_id")
    parser.add_argument("video_seconds", type=float)
    args = parser.parse_args(argv)
    try:
        path = make_export(
            args.checkpoint_dir, args.kind, args.out_path, args.job_id, args.video_seconds
        )
    except EXPORT_ERRORS as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
