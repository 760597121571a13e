"""Motion library: interpolation, slerp, wrap vs clamp, qvel convention, weighted sampling."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from wildrobot.envs.motions.format import Motion, load_model
from wildrobot.envs.motions.gait import home_qpos
from wildrobot.envs.motions.library import MotionLibrary, quat_mul, quat_yaw, yaw_quat


def _rotating_clip(loop: str, weight: float = 1.0, name: str = "c") -> Motion:
    """5 frames at 10 fps: root moves 0.1 m/frame along x, yaws 0.2 rad/frame, a joint ramps."""
    qpos = np.tile(home_qpos(), (5, 1))
    base = qpos[0, 3:7] / np.linalg.norm(qpos[0, 3:7])
    for i in range(5):
        qpos[i, 0] = 0.1 * i
        qpos[i, 3:7] = quat_mul(yaw_quat(np.array(0.2 * i)), base)
        qpos[i, 7] = 0.05 * i
    return Motion(name=name, fps=10.0, qpos=qpos, loop=loop, weight=weight)


def test_window_at_frame_times_equals_frames():
    clip = _rotating_clip("clamp")
    lib = MotionLibrary([clip])
    got = lib.qpos_at(0, np.arange(5) / 10.0)
    np.testing.assert_allclose(got, clip.qpos, atol=1e-12)


def test_midpoint_slerp_is_unit_and_halfway():
    clip = _rotating_clip("clamp")
    q = MotionLibrary([clip]).qpos_at(0, np.array([0.15]))[0]
    assert np.linalg.norm(q[3:7]) == pytest.approx(1.0, abs=1e-12)
    # Halfway between yaw 0.2 and 0.4: equal angles (0.1 rad) to both neighbours.
    for frame in (1, 2):
        dot = abs(float(np.dot(q[3:7], clip.qpos[frame, 3:7])))
        assert 2.0 * np.arccos(min(dot, 1.0)) == pytest.approx(0.1, abs=1e-9)
    assert q[0] == pytest.approx(0.15)  # linear position
    assert q[7] == pytest.approx(0.075)  # linear joint


def test_clamp_holds_the_ends():
    clip = _rotating_clip("clamp")
    lib = MotionLibrary([clip])
    got = lib.qpos_at(0, np.array([-1.0, 0.4, 5.0]))
    np.testing.assert_allclose(got, clip.qpos[[0, 4, 4]], atol=1e-12)


def test_wrap_carries_the_root_through_cycles():
    clip = _rotating_clip("wrap")  # one cycle: +0.4 m along the initial heading, +0.8 rad yaw
    lib = MotionLibrary([clip])
    times = np.array([0.1, 0.5, 0.9, -0.3])  # frame 1 in cycles 0, 1, 2, -1
    got = lib.qpos_at(0, times)
    np.testing.assert_allclose(got[:, 7], 0.05, atol=1e-12)  # joints repeat
    np.testing.assert_allclose(got[:, 2], clip.qpos[1, 2], atol=1e-12)  # height repeats
    yaw = quat_yaw(got[:, 3:7])
    np.testing.assert_allclose(yaw, 0.2 + 0.8 * np.array([0, 1, 2, -1]), atol=1e-9)
    # Cycle 1's root: the cycle's rigid motion (rotate 0.8 about the origin, shift 0.4 in x)
    # applied to frame 1's root (0.1, 0): (0.4 + 0.1 cos 0.8, 0.1 sin 0.8).
    np.testing.assert_allclose(got[1, :2], [0.4 + 0.1 * np.cos(0.8), 0.1 * np.sin(0.8)], atol=1e-9)
    # The root is continuous across the wrap (this test clip's joint ramp is not periodic).
    near = lib.qpos_at(0, np.array([0.4 - 1e-7, 0.4 + 1e-7]))
    np.testing.assert_allclose(near[0, :7], near[1, :7], atol=1e-5)


@pytest.mark.parametrize("loop", ["wrap", "clamp"])
def test_velocities_match_mujoco_finite_differences(loop):
    clip = _rotating_clip(loop)
    lib = MotionLibrary([clip])
    model = load_model()
    times = np.array([0.12, 0.2, 0.33])
    got = lib.qvel_at(0, times)
    h = 0.5 / clip.fps
    for t, v in zip(times, got, strict=True):
        a, b = lib.qpos_at(0, np.array([t - h, t + h]))
        expected = np.zeros(model.nv)
        mujoco.mj_differentiatePos(model, expected, 2.0 * h, a, b)
        np.testing.assert_allclose(v, expected, atol=1e-9)
    # Within one interpolation segment the root moves at 1 m/s in world x and yaws at 2 rad/s
    # about world z, which is also the body z here up to the home pose's slight pitch.
    assert got[1, 0] == pytest.approx(1.0)
    assert np.linalg.norm(got[1, 3:6]) == pytest.approx(2.0)


def test_sample_windows_shapes_spacing_and_weights():
    lib = MotionLibrary([_rotating_clip("wrap", 1.0, "a"), _rotating_clip("clamp", 3.0, "b")])
    rng = np.random.default_rng(0)
    windows = lib.sample_windows(rng, n=4000, k=3, dt=0.02)
    assert windows.qpos.shape == (4000, 3, 24) and windows.qvel.shape == (4000, 3, 23)
    share_b = float(np.mean(windows.clip == 1))
    assert share_b == pytest.approx(0.75, abs=0.03)  # 3 sigma of a binomial(4000, 0.75) ~ 0.021
    # Clamp windows stay inside the clip; the joint ramps 0.5 rad/s, so frames differ by 0.01.
    b = windows.clip == 1
    assert np.all(windows.start_time[b] <= 0.4 - 0.04 + 1e-12)
    np.testing.assert_allclose(np.diff(windows.qpos[b][:, :, 7], axis=1), 0.01, atol=1e-9)
    norms = np.linalg.norm(windows.qpos[..., 3:7], axis=-1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-9)
