"""Rollout videos: a policy on its task, rendered offscreen with MuJoCo's renderer, as MP4.

    python -m wildrobot.workers.export.video CKPT -o rollout.mp4 [--seconds 4] [--seed 0]

The deterministic policy (`load_policy`) drives the task's env (the training config, pushes
included, no domain randomization) for `seconds`; every other control step becomes a frame
(25 fps at the 50 Hz control rate) seen by a camera that tracks the pelvis, over a checker floor
(render_scene.py: added to a render-only copy of the model, so a walk reads as motion), with
arrows on the floor for the commanded (green, walk) and actual (orange) planar velocity, and an
overlay: the task, time, step of the checkpoint, the command and the actual velocity (walk) and
a mark once the robot has fallen. The env keeps simulating after a fall, so the video shows what
happens next.

Rendering needs an OpenGL that works without a display: Mesa's EGL (llvmpipe, software) from
Debian's packages, which scripts/setup installs. MuJoCo picks its GL backend when it is first
imported, so `render_video` runs this module in a child process with MUJOCO_GL=egl set (a GL
failure there cannot take the worker down either) and JAX_PLATFORMS=cpu (the GPU stays the
runner's). Frames go to the ffmpeg binary that ships in
the imageio-ffmpeg wheel (H.264, yuv420p: plays in browsers).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

GL_BACKEND = "egl"
FPS = 25
WIDTH, HEIGHT = 640, 480  # multiples of 16: no rescaling by the encoder
DEFAULT_SECONDS = 4.0


class VideoError(RuntimeError):
    """The video could not be made (no renderable model, GL or encoder failure)."""


def render_video(
    checkpoint_dir: Path,
    out_path: Path,
    seconds: float = DEFAULT_SECONDS,
    seed: int = 0,
    timeout_s: float = 900.0,
) -> dict[str, Any]:
    """Renders the checkpoint's policy to out_path in a child process; returns its report
    (frames, fps, width, height, seconds, rollout_s, render_s, encode_s, fell_at_s)."""
    env = dict(os.environ)
    # One env's rollout is cheap on the CPU; on a GPU worker the child must not try to take
    # the GPU memory the runner's training holds (JAX preallocates most of it by default).
    env["JAX_PLATFORMS"] = "cpu"
    env.setdefault("MUJOCO_GL", GL_BACKEND)
    env.setdefault("PYOPENGL_PLATFORM", env["MUJOCO_GL"])
    command = [
        sys.executable, "-m", "wildrobot.workers.export.video", str(checkpoint_dir),
        "-o", str(out_path), "--seconds", str(seconds), "--seed", str(seed),
    ]  # fmt: skip
    try:
        with warnings.catch_warnings():
            # Python warns about fork() in a multithreaded (JAX) process; subprocess execs the
            # child right after the fork, which is the safe case.
            warnings.filterwarnings("ignore", "os.fork", RuntimeWarning)
            done = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
            )
    except subprocess.TimeoutExpired:
        raise VideoError(f"rendering took longer than {timeout_s:.0f} s") from None
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        raise VideoError(f"video renderer exited with {done.returncode}: {tail}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def rollout(checkpoint_dir: Path, seconds: float, seed: int) -> tuple[Any, dict[str, np.ndarray]]:
    """The task env and, per control step, qpos [T, nq], command [T, 3] (or absent), done [T]."""
    import jax

    from ..training import checkpoint as ckpt
    from ..training.ppo import StatefulPolicy, load_policy
    from ..training.trainer import make_base_env
    from .check import Stepper

    spec = ckpt.read_spec(checkpoint_dir)
    env = make_base_env(spec.task, spec.env_overrides)
    if getattr(env, "mj_model", None) is None:
        raise VideoError(f"{spec.task} has no MuJoCo model to render")
    policy = load_policy(checkpoint_dir)
    if isinstance(policy, StatefulPolicy):  # an SSM: one episode, its state carried from zeros
        policy = policy.carried((1,))
    stepper = Stepper(env)
    state = stepper.reset(jax.random.PRNGKey(seed))
    steps = max(1, round(seconds / env.dt))
    qpos, command, done = [], [], []
    for _ in range(steps):
        qpos.append(np.asarray(state.pipeline_state.qpos))
        command.append(np.asarray(state.info.get("command", np.zeros(3))))
        done.append(bool(state.done))
        state = stepper.act(state, policy)
    return env, {"qpos": np.stack(qpos), "command": np.stack(command), "done": np.array(done)}


def _overlay(frame: np.ndarray, lines: list[str], alert: str | None) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=16)
    height = 8 + 20 * len(lines)
    draw.rectangle((0, 0, image.width, height), fill=(0, 0, 0))
    for row, text in enumerate(lines):
        draw.text((10, 5 + 20 * row), text, fill=(255, 255, 255), font=font)
    if alert:
        draw.text((10, height + 6), alert, fill=(255, 60, 60), font=font)
    return np.asarray(image)


def make_video(
    checkpoint_dir: Path, out_path: Path, seconds: float = DEFAULT_SECONDS, seed: int = 0
) -> dict[str, Any]:
    """Rolls out and renders in this process (MUJOCO_GL must already be set); see module doc."""
    import imageio_ffmpeg
    import mujoco

    from wildrobot.envs.wildrobot import constants

    from ..training import checkpoint as ckpt
    from . import render_scene

    checkpoint_dir, out_path = Path(checkpoint_dir), Path(out_path)
    start = time.perf_counter()
    env, traj = rollout(checkpoint_dir, seconds, seed)
    rollout_s = time.perf_counter() - start
    spec, step = ckpt.read_spec(checkpoint_dir), ckpt.read_meta(checkpoint_dir)["env_steps"]
    stride = max(1, round(1.0 / (FPS * env.dt)))
    fps = 1.0 / (stride * env.dt)

    model = render_scene.render_model(constants.XML_PATH, constants.FLOOR_GEOM)
    if (model.nq, model.nbody, model.ngeom) != (
        env.mj_model.nq,
        env.mj_model.nbody,
        env.mj_model.ngeom,
    ):
        model = env.mj_model  # not the WildRobot MJCF: render it as it is
    velocity = render_scene.planar_velocity(traj["qpos"], env.dt)
    data = mujoco.MjData(model)
    camera = mujoco.MjvCamera()
    camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
    camera.trackbodyid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, constants.ROOT_BODY)
    camera.distance, camera.azimuth, camera.elevation = 1.4, 135.0, -12.0
    walk = spec.task == "WildRobotWalk"
    fallen = np.nonzero(traj["done"])[0]
    fell_at = float(fallen[0] * env.dt) if fallen.size else None

    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp.mp4")
    writer = imageio_ffmpeg.write_frames(
        str(tmp), (WIDTH, HEIGHT), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
        quality=7, macro_block_size=16, ffmpeg_log_level="error",
    )  # fmt: skip
    writer.send(None)
    render_s = encode_s = 0.0
    frames = 0
    renderer = mujoco.Renderer(model, HEIGHT, WIDTH)
    try:
        for t in range(0, len(traj["qpos"]), stride):
            tick = time.perf_counter()
            data.qpos[:] = traj["qpos"][t]
            mujoco.mj_forward(model, data)
            renderer.update_scene(data, camera)
            qpos = traj["qpos"][t]
            command = traj["command"][t] if walk else None
            render_scene.add_velocity_arrows(renderer.scene, qpos, command, velocity[t])
            lines = [f"{spec.task}   t = {t * env.dt:5.2f} s   checkpoint step {step:,}"]
            yaw = render_scene.heading(qpos)
            c, s = np.cos(yaw), np.sin(yaw)
            ax, ay = velocity[t]
            actual = (c * ax + s * ay, -s * ax + c * ay)  # in the heading frame, as commanded
            if walk:
                vx, vy, wz = command
                lines.append(f"command  vx {vx:+.2f} m/s  vy {vy:+.2f} m/s  yaw {wz:+.2f} rad/s")
            lines.append(
                f"actual   vx {actual[0]:+.2f} m/s  vy {actual[1]:+.2f} m/s"
                + ("   arrows: green command, orange actual (1 s)" if walk else "   arrow: 1 s")
            )
            alert = (
                f"fell at t = {fell_at:.2f} s"
                if fell_at is not None and t * env.dt >= fell_at
                else None
            )
            frame = _overlay(renderer.render(), lines, alert)
            tock = time.perf_counter()
            writer.send(np.ascontiguousarray(frame).tobytes())
            render_s += tock - tick
            encode_s += time.perf_counter() - tock
            frames += 1
    finally:
        renderer.close()
        writer.close()
    tmp.replace(out_path)
    return {
        "path": str(out_path),
        "frames": frames,
        "fps": fps,
        "width": WIDTH,
        "height": HEIGHT,
        "seconds": frames / fps,
        "rollout_s": rollout_s,
        "render_s": render_s,
        "encode_s": encode_s,
        "render_s_per_video_s": (render_s + encode_s) / (frames / fps),
        "fell_at_s": fell_at,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("-o", "--out", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if "mujoco" not in sys.modules:  # MuJoCo reads MUJOCO_GL when it is first imported
        os.environ.setdefault("MUJOCO_GL", GL_BACKEND)
        os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
    try:
        report = make_video(args.checkpoint, args.out, args.seconds, args.seed)
    except VideoError as exc:
        print(f"video: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
