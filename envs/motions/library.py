"""A set of reference clips and the sampler that fills an AMP reference buffer from them.

Runs on the host in numpy: the discriminator's reference buffer is refilled between compiled
training iterations, so nothing here needs to be traced.

Time within a clip (duration D = (T - 1) / fps):
  - "clamp": t is clipped to [0, D].
  - "wrap": the clip holds whole gait cycles and its last frame is the pose one cycle after the
    first (same joints, root moved). Time t = c * D + tau (c = floor(t / D)) is played as frame
    time tau with the root carried c times by the clip's per-cycle planar displacement G: the
    rigid motion in the floor plane (x, y, yaw about z) that takes the root's planar pose at frame
    0 to its planar pose at frame T - 1. So a looping walk keeps walking forward and a looping turn
    keeps turning, with no jump back to the start. Root height, roll, pitch and joints repeat.

Between frames, positions and joints are linearly interpolated and the root quaternion is
slerped. Velocities are in MuJoCo's qvel convention (mj_differentiatePos): root linear velocity
in the world frame, root angular velocity in the root body's frame, then joint rates. They are
central finite differences of the interpolated qpos over one frame interval (t +- 0.5 / fps).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .format import NQ, NV, ROOT_QPOS, Motion


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of wxyz quaternions, [..., 4] x [..., 4] -> [..., 4]."""
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def quat_conj(q: np.ndarray) -> np.ndarray:
    """Conjugate (inverse of a unit quaternion), [..., 4]."""
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quat_slerp(q0: np.ndarray, q1: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Shortest-path spherical interpolation, q0, q1 [..., 4], s [...] in [0, 1] -> [..., 4]."""
    dot = np.sum(q0 * q1, axis=-1)
    q1 = np.where((dot < 0.0)[..., None], -q1, q1)
    dot = np.clip(np.abs(dot), -1.0, 1.0)
    theta = np.arccos(dot)
    sin_theta = np.sin(theta)
    small = sin_theta < 1e-8
    safe = np.where(small, 1.0, sin_theta)
    w0 = np.where(small, 1.0 - s, np.sin((1.0 - s) * theta) / safe)
    w1 = np.where(small, s, np.sin(s * theta) / safe)
    out = w0[..., None] * q0 + w1[..., None] * q1
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def quat_to_rotvec(q: np.ndarray) -> np.ndarray:
    """Rotation vector (axis * angle, angle in [0, pi]) of unit wxyz quaternions, [..., 4] -> [..., 3]."""
    q = np.where((q[..., :1] < 0.0), -q, q)
    vec = q[..., 1:]
    sin_half = np.linalg.norm(vec, axis=-1)
    angle = 2.0 * np.arctan2(sin_half, q[..., 0])
    scale = np.where(sin_half > 1e-12, angle / np.maximum(sin_half, 1e-12), 2.0)
    return vec * scale[..., None]


def yaw_quat(yaw: np.ndarray) -> np.ndarray:
    """Quaternion of a rotation by `yaw` [...] about world z -> [..., 4]."""
    half = 0.5 * np.asarray(yaw)
    zero = np.zeros_like(half)
    return np.stack([np.cos(half), zero, zero, np.sin(half)], axis=-1)


def quat_yaw(q: np.ndarray) -> np.ndarray:
    """Heading angle (rad) of wxyz quaternions: the yaw of the body's x axis in the floor plane."""
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def differentiate_qpos(qpos0: np.ndarray, qpos1: np.ndarray, dt: np.ndarray | float) -> np.ndarray:
    """qvel that moves qpos0 to qpos1 in dt, as mujoco.mj_differentiatePos: [..., 24] -> [..., 23].

    Root linear velocity is in the world frame; root angular velocity in the body frame
    (rotvec(conj(q0) * q1) / dt); joints (all hinges here) are (q1 - q0) / dt.
    """
    dt = np.asarray(dt, dtype=np.float64)[..., None]
    lin = (qpos1[..., :3] - qpos0[..., :3]) / dt
    dq = quat_mul(quat_conj(qpos0[..., 3:7]), qpos1[..., 3:7])
    ang = quat_to_rotvec(dq) / dt
    joints = (qpos1[..., ROOT_QPOS:] - qpos0[..., ROOT_QPOS:]) / dt
    return np.concatenate([lin, ang, joints], axis=-1)


@dataclass(frozen=True)
class MotionWindows:
    """n sampled windows of k frames. qpos [n, k, 24], qvel [n, k, 23], clip [n], start_time [n]."""

    qpos: np.ndarray
    qvel: np.ndarray
    clip: np.ndarray
    start_time: np.ndarray


class MotionLibrary:
    """Several clips, sampled by weight; `qpos_at` evaluates any clip at any time."""

    def __init__(self, motions: Sequence[Motion]):
        if not motions:
            raise ValueError("motions: need at least one clip")
        self.motions = tuple(motions)
        weights = np.array([m.weight for m in self.motions], dtype=np.float64)
        self.probabilities = weights / weights.sum()
        # Per-cycle planar displacement of each looping clip: (dx, dy) in frame 0's heading frame
        # and dyaw, so that composing it c times carries the root through c cycles.
        self._cycle = [self._cycle_displacement(m) for m in self.motions]

    @staticmethod
    def _cycle_displacement(motion: Motion) -> tuple[np.ndarray, float]:
        first, last = motion.qpos[0], motion.qpos[-1]
        yaw0 = float(quat_yaw(first[3:7]))
        dyaw = float(quat_yaw(last[3:7])) - yaw0
        dyaw = (dyaw + np.pi) % (2.0 * np.pi) - np.pi
        c, s = np.cos(-yaw0), np.sin(-yaw0)
        dxy_world = last[:2] - first[:2]
        dxy_local = np.array(
            [c * dxy_world[0] - s * dxy_world[1], s * dxy_world[0] + c * dxy_world[1]]
        )
        return dxy_local, dyaw

    def _frame_qpos(self, motion: Motion, tau: np.ndarray) -> np.ndarray:
        """Interpolated qpos at frame times tau [m] in [0, D] -> [m, 24]."""
        pos = np.clip(tau * motion.fps, 0.0, motion.num_frames - 1)
        i0 = np.minimum(np.floor(pos).astype(np.int64), motion.num_frames - 2)
        s = pos - i0
        a, b = motion.qpos[i0], motion.qpos[i0 + 1]
        out = a + s[:, None] * (b - a)
        out[:, 3:7] = quat_slerp(a[:, 3:7], b[:, 3:7], s)
        return out

    def qpos_at(self, clip: int, times: np.ndarray) -> np.ndarray:
        """qpos of clip `clip` at times [m] (s, any value; wrapped or clamped) -> [m, 24]."""
        motion = self.motions[clip]
        times = np.asarray(times, dtype=np.float64).reshape(-1)
        duration = motion.duration
        if motion.loop == "clamp":
            return self._frame_qpos(motion, np.clip(times, 0.0, duration))
        cycles = np.floor(times / duration)
        tau = times - cycles * duration
        out = self._frame_qpos(motion, tau)
        dxy_local, dyaw = self._cycle[clip]
        yaw0 = float(quat_yaw(motion.qpos[0, 3:7]))
        origin = motion.qpos[0, :2]
        for c in np.unique(cycles):
            rows = cycles == c
            out[rows] = _apply_cycles(out[rows], int(c), origin, yaw0, dxy_local, dyaw)
        return out

    def qvel_at(self, clip: int, times: np.ndarray) -> np.ndarray:
        """qvel (MuJoCo convention) by central differences over one frame interval -> [m, 23]."""
        motion = self.motions[clip]
        times = np.asarray(times, dtype=np.float64).reshape(-1)
        half = 0.5 / motion.fps
        lo, hi = times - half, times + half
        if motion.loop == "clamp":
            lo = np.clip(lo, 0.0, motion.duration)
            hi = np.clip(hi, 0.0, motion.duration)
        return differentiate_qpos(self.qpos_at(clip, lo), self.qpos_at(clip, hi), hi - lo)

    def sample_windows(self, rng: np.random.Generator, n: int, k: int, dt: float) -> MotionWindows:
        """n windows of k frames spaced dt seconds (the control step), clips chosen by weight.

        Starts are uniform over the clip: in [0, D) for "wrap" clips, and in [0, D - (k - 1) dt]
        for "clamp" clips (0 when the window is longer than the clip; it is then clamped).
        Returns qpos [n, k, 24] and qvel [n, k, 23].
        """
        clips = rng.choice(len(self.motions), size=n, p=self.probabilities)
        starts = np.empty(n)
        qpos = np.empty((n, k, NQ))
        qvel = np.empty((n, k, NV))
        offsets = np.arange(k) * dt
        for clip in np.unique(clips):
            rows = np.nonzero(clips == clip)[0]
            motion = self.motions[clip]
            span = (
                motion.duration
                if motion.loop == "wrap"
                else max(motion.duration - offsets[-1], 0.0)
            )
            starts[rows] = rng.uniform(0.0, 1.0, size=rows.size) * span
            times = (starts[rows, None] + offsets[None, :]).reshape(-1)
            qpos[rows] = self.qpos_at(int(clip), times).reshape(rows.size, k, NQ)
            qvel[rows] = self.qvel_at(int(clip), times).reshape(rows.size, k, NV)
        return MotionWindows(qpos=qpos, qvel=qvel, clip=clips, start_time=starts)


def _apply_cycles(
    qpos: np.ndarray,
    cycles: int,
    origin: np.ndarray,
    yaw0: float,
    dxy_local: np.ndarray,
    dyaw: float,
) -> np.ndarray:
    """Carry root poses [m, 24] through `cycles` (may be negative) per-cycle planar displacements."""
    if cycles == 0:
        return qpos
    # The planar pose of frame 0 is P0 = (origin, yaw0); one cycle maps P0 to P0 * D, D = (dxy, dyaw)
    # in P0's frame. The world transform of one cycle is G = P0 D P0^-1; apply G^cycles.
    angle, shift = 0.0, np.zeros(2)  # G^c as (rotation angle, translation) in world
    c0, s0 = np.cos(yaw0), np.sin(yaw0)
    step_world = np.array(
        [c0 * dxy_local[0] - s0 * dxy_local[1], s0 * dxy_local[0] + c0 * dxy_local[1]]
    )

    def rot(a: float, v: np.ndarray) -> np.ndarray:
        return np.array([np.cos(a) * v[0] - np.sin(a) * v[1], np.sin(a) * v[0] + np.cos(a) * v[1]])

    # G(p) = origin + step_world + R(dyaw) (p - origin); compose |cycles| times (or the inverse).
    one_angle, one_shift = dyaw, origin + step_world - rot(dyaw, origin)
    if cycles < 0:
        one_angle, one_shift = -dyaw, -rot(-dyaw, one_shift)
    for _ in range(abs(cycles)):
        angle, shift = angle + one_angle, rot(one_angle, shift) + one_shift
    out = qpos.copy()
    xy = out[:, :2].copy()
    c, s = np.cos(angle), np.sin(angle)
    out[:, 0] = c * xy[:, 0] - s * xy[:, 1] + shift[0]
    out[:, 1] = s * xy[:, 0] + c * xy[:, 1] + shift[1]
    out[:, 3:7] = quat_mul(yaw_quat(np.full(len(out), angle)), out[:, 3:7])
    return out
