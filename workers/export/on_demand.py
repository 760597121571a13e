"""Making an export from a checkpoint directory on request (the client's fallback when the
server has none for that checkpoint: only a job's final checkpoint gets them)."""

from __future__ import annotations

from pathlib import Path

from wildrobot.exports import ArtifactKind
from wildrobot.workers.export.observation_layout import LayoutError
from wildrobot.workers.export.onnx_policy import ExportError
from wildrobot.workers.export.video import VideoError

# What make_export raises for a checkpoint it cannot export (the client reports these).
EXPORT_ERRORS = (ExportError, LayoutError, VideoError)


def make_export(
    checkpoint_dir: Path, kind: str, out_path: str | Path, job_id: str, video_seconds: float
) -> Path:
    """Writes the ONNX policy or the rollout video of `checkpoint_dir` to out_path."""
    out = Path(out_path)
    if ArtifactKind(kind) is ArtifactKind.ONNX:
        from wildrobot.workers.export.onnx_policy import export_policy

        return export_policy(checkpoint_dir, out, job_id=job_id)
    from wildrobot.workers.export.video import render_video

    render_video(checkpoint_dir, out, seconds=video_seconds)
    return out
