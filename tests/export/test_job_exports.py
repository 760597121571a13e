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


def test_the_video_child_runs_jax_on_the_cpu_with_egl(monkeypatch, tmp_path: Path) -> None:
    import subprocess

    from wildrobot.workers.export import video

    seen: dict = {}

    def fake_run(command, env, **kwargs):
        seen.update(command=command, env=env)
        return subprocess.CompletedProcess(command, 0, stdout='{"frames": 3}\n', stderr="")

    monkeypatch.setenv("JAX_PLATFORMS", "cuda")  # a GPU worker's setting
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.setattr(video.subprocess, "run", fake_run)
    assert video.render_video(tmp_path / "ckpt", tmp_path / "v.mp4", seconds=1.5) == {"frames": 3}
    assert seen["env"]["JAX_PLATFORMS"] == "cpu" and seen["env"]["MUJOCO_GL"] == "egl"
    assert seen["command"][1:3] == ["-m", "wildrobot.workers.export.video"]
    assert seen["command"][-4:] == ["--seconds", "1.5", "--seed", "0"]


class StalePublisher:
    """The attempt lost its lease while exporting: every fenced write is refused."""

    def log(self, level: str, message: str) -> None:
        from wildrobot.queue.client import LeaseLost

        raise LeaseLost("write refused: attempt 1 is stale")


def test_a_stale_attempt_never_makes_an_export_visible(monkeypatch, tmp_path: Path) -> None:
    import pytest

    from wildrobot import exports
    from wildrobot.queue.client import LeaseLost
    from wildrobot.workers.export import onnx_policy

    def fake_export(checkpoint_dir: Path, out_path: Path, job_id: str | None = None) -> Path:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_bytes(b"onnx")
        return out_path

    monkeypatch.setattr(onnx_policy, "export_policy", fake_export)
    checkpoint = tmp_path / "job" / "attempt-1" / "checkpoints" / "000000001280"
    checkpoint.mkdir(parents=True)
    context = JobContext("job", 1, checkpoint.parents[1], None, StalePublisher(), lambda: False)
    with pytest.raises(LeaseLost):
        make_exports(context, PpoSpec(task="PointMass", export_onnx=True), checkpoint)
    assert not exports.artifact_path(checkpoint, exports.ArtifactKind.ONNX).exists()
