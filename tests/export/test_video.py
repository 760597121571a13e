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


def test_the_render_model_changes_how_the_floor_looks_not_the_physics():
    """The checker floor lives in a render-only copy: the training model has no texture, and
    the two step identically (same state, same controls, 200 steps, bit for bit)."""
    import mujoco

    from wildrobot.envs.registry import make
    from wildrobot.envs.wildrobot import constants
    from wildrobot.workers.export.render_scene import FLOOR_TEXTURE, render_model

    trained = make("WildRobotWalk").mj_model  # what training builds, as training builds it
    shown = render_model(constants.XML_PATH, constants.FLOOR_GEOM)
    floor = mujoco.mj_name2id(shown, mujoco.mjtObj.mjOBJ_GEOM, constants.FLOOR_GEOM)
    assert (trained.ntex, trained.nmat, trained.geom_matid[floor]) == (0, 0, -1)
    assert shown.ntex == 1 and shown.mat(FLOOR_TEXTURE).id == shown.geom_matid[floor]
    plain = mujoco.MjModel.from_xml_path(str(constants.XML_PATH))
    shown.opt.timestep = plain.opt.timestep
    runs = []
    for model in (plain, shown):
        data = mujoco.MjData(model)
        mujoco.mj_resetData(model, data)
        rng = np.random.default_rng(0)
        for _ in range(200):
            data.ctrl[:] = rng.uniform(-0.3, 0.3, model.nu)
            mujoco.mj_step(model, data)
        runs.append(np.concatenate([data.qpos, data.qvel]))
    assert np.array_equal(runs[0], runs[1]) and np.abs(runs[0]).max() > 0.01


_RENDER_PROBE = """
import json, mujoco, numpy as np
from wildrobot.envs.wildrobot import constants
from wildrobot.workers.export import render_scene as rs
plain = mujoco.MjModel.from_xml_path(str(constants.XML_PATH))
shown = rs.render_model(constants.XML_PATH, constants.FLOOR_GEOM)
camera = mujoco.MjvCamera()
camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
camera.trackbodyid = mujoco.mj_name2id(plain, mujoco.mjtObj.mjOBJ_BODY, constants.ROOT_BODY)
camera.distance, camera.azimuth, camera.elevation = 1.4, 135.0, -12.0
def frame(model, x, command=None, velocity=(0.0, 0.0)):
    data = mujoco.MjData(model)
    data.qpos[0] = x
    mujoco.mj_forward(model, data)
    renderer = mujoco.Renderer(model, 240, 320)
    renderer.update_scene(data, camera)
    rs.add_velocity_arrows(renderer.scene, data.qpos.copy(), command, np.array(velocity))
    image = renderer.render().astype(np.int16)
    renderer.close()
    return image
def floor_shift(model):  # the robot stays put under the tracking camera; the floor slides
    return float(np.abs(frame(model, 0.0)[160:] - frame(model, 0.05)[160:]).mean())
def green(image):
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    return int(((g > 150) & (r < 110) & (b < 110)).sum())
def orange(image):
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    return int(((r > 200) & (g > 90) & (g < 190) & (b < 80)).sum())
forward = frame(shown, 0.0, np.array([0.5, 0.0, 0.0]), (0.0, -0.3))
still = frame(shown, 0.0, np.array([0.0, 0.0, 0.0]), (0.0, 0.0))
print(json.dumps({"plain": floor_shift(plain), "checker": floor_shift(shown),
                  "green": [green(forward), green(still)], "orange": [orange(forward), orange(still)]}))
"""


def test_a_checker_floor_shows_motion_and_arrows_show_the_velocities():
    """Rendered (EGL, in a child process as the exporter does): under the tracking camera a
    5 cm move changes the plain floor's pixels by nothing and the checker's clearly; the command
    (green) and actual velocity (orange) arrows are drawn, and not when both are zero."""
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, MUJOCO_GL="egl", PYOPENGL_PLATFORM="egl", JAX_PLATFORMS="cpu")
    done = subprocess.run(
        [sys.executable, "-c", _RENDER_PROBE], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    print(probe)
    assert probe["plain"] < 0.5 < 5.0 < probe["checker"], probe
    assert probe["green"][0] > 30 and probe["green"][1] == 0, probe
    assert probe["orange"][0] > 30 and probe["orange"][1] == 0, probe
