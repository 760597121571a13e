"""End-of-job exports are extras: a failure is logged on the job, never raised."""

from __future__ import annotations

from pathlib import Path

from tests.export.test_video import RecordingPublisher
from wildrobot.specs import PpoSpec
from wildrobot.workers.handlers import JobContext
from wildrobot.workers.handlers.ppo import make_exports, wants_video


def test_a_failed_export_is_logged_and_the_job_goes_on(tmp_path: Path) -> None:
    checkpoint = tmp_path / "job" / "checkpoints" / "000000001280"
    checkpoint.mkdir(parents=True)  # no spec, no parameters: the export cannot work
    publisher = RecordingPublisher()
    context = JobContext("job", 1, tmp_path / "job", None, publisher, lambda: False)
    make_exports(context, PpoSpec(task="PointMass"), checkpoint)
    assert len(publisher.logs) == 1
    level, message = publisher.logs[0]
    assert level == "error" and message.startswith("onnx export of step 1280 failed")


def test_video_only_for_wildrobot_tasks_and_when_asked() -> None:
    assert wants_video(PpoSpec(task="WildRobotWalk"))
    assert wants_video(PpoSpec(task="WildRobotStand", video_seconds=1.0))
    assert not wants_video(PpoSpec(task="WildRobotStand", video_seconds=0.0))
    assert not wants_video(PpoSpec(task="PointMass"))
