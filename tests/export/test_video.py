"""Rollout videos: the end-of-job exports of a WildRobotStand run, the MP4 decoded back."""

from __future__ import annotations

from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from wildrobot import exports
from wildrobot.specs import PpoSpec
from wildrobot.workers.export.video import FPS, HEIGHT, WIDTH, VideoError, render_video
from wildrobot.workers.handlers import JobContext
from wildrobot.workers.handlers.ppo import make_exports

from .conftest import STAND_TINY

SECONDS = 2.0


class RecordingPublisher:
    def __init__(self) -> None:
        self.logs: list[tuple[str, str]] = []

    def metrics(self, step: int, values: dict[str, float]) -> None:
        raise AssertionError("exports publish no metrics")

    def checkpoint(self, step: int, path: Path, best: bool = False) -> None:
        raise AssertionError("exports register no checkpoint")

    def log(self, level: str, message: str) -> None:
        self.logs.append((level, message))


def decode(path: Path) -> tuple[dict, np.ndarray]:
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = reader.__next__()
    width, height = meta["size"]
    frames = [np.frombuffer(f, np.uint8).reshape(height, width, 3) for f in reader]
    return meta, np.stack(frames)


@pytest.mark.slow
def test_end_of_job_exports_onnx_and_a_video(stand_checkpoint: Path):
    publisher = RecordingPublisher()
    context = JobContext(
        job_id="job-video",
        attempt=1,
        run_dir=stand_checkpoint.parent.parent,
        resume_from=None,
        publish=publisher,
        should_stop=lambda: False,
    )
    spec = PpoSpec(**STAND_TINY, video_seconds=SECONDS)
    make_exports(context, spec, stand_checkpoint)

    assert [level for level, _ in publisher.logs] == ["info", "info"], publisher.logs
    onnx_path = exports.artifact_path(stand_checkpoint, "onnx")
    video_path = exports.artifact_path(stand_checkpoint, "video")
    assert onnx_path.stat().st_size > 1000
    meta, frames = decode(video_path)
    print(f"\n{publisher.logs[-1][1]}; {video_path.stat().st_size} bytes")
    assert meta["codec"] == "h264" and meta["fps"] == FPS
    assert frames.shape == (SECONDS * FPS, HEIGHT, WIDTH, 3)
    # The robot moves (and the overlay's clock ticks): consecutive frames differ, and the
    # picture is not blank.
    changes = np.abs(np.diff(frames.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))
    assert np.all(changes > 0.01) and frames.std() > 10


@pytest.mark.slow
def test_point_mass_has_no_video_and_a_bad_checkpoint_fails_cleanly(
    point_mass_checkpoint: Path, tmp_path: Path
):
    with pytest.raises(VideoError, match="no MuJoCo model"):
        render_video(point_mass_checkpoint, tmp_path / "x.mp4", seconds=1.0)
    assert not (tmp_path / "x.mp4").exists()
