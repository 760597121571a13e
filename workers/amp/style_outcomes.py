"""Outcome metrics of style: what a policy's gait does, judged against a clip's.

A statue and a plain PPO policy should both fail these where an AMP policy that took the clip's
style passes, so they judge what the policy does, not a proxy the training loop can hold:

- stride frequency (Hz): the spectral peak of the hip and knee pitch angles (mean removed, a Hann
  window, power summed over those joints), searched in [MIN_STRIDE_HZ, MAX_STRIDE_HZ]. A peak
  whose power is below MIN_PEAK_FRACTION of the signals' total power (or signals that barely move,
  std under MIN_MOTION_RAD) is no stride: the frequency is reported as 0.
- joint amplitudes (rad) per group (hips, knees, ankles, arms, waist): half the 5th-95th
  percentile range of each joint's angle, averaged over the group's joints.
- foot clearance (m): per foot, the 95th percentile of the foot's height above its lowest 5%
  (the swing height above stance), averaged over the feet.
- cycle distance (rad): a phase-aligned joint-trajectory distance. One gait cycle of the clip
  (1 / its stride frequency) against every cycle-long segment of the policy's trajectory
  (stepping by a quarter cycle); dynamic time warping (DTW) with the RMS joint difference as the
  local cost, normalized by the warping path's length; the best-aligned segment's distance. The
  DTW absorbs a phase or tempo difference inside the cycle, so a policy is not penalized for
  starting its stride at another phase.

Inputs are the AMP feature frames (workers/amp/features.py) at the control rate, [T, F] with
`feature_names`' columns; everything here is numpy on the host.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MIN_STRIDE_HZ = 0.3
MAX_STRIDE_HZ = 5.0
MIN_PEAK_FRACTION = 0.05
MIN_MOTION_RAD = 0.01
STRIDE_JOINTS = ("left_hip_pitch", "right_hip_pitch", "left_knee_pitch", "right_knee_pitch")
JOINT_GROUPS = {
    "hip": ("hip_pitch", "hip_roll"),
    "knee": ("knee_pitch",),
    "ankle": ("ankle_pitch", "ankle_roll"),
    "arm": ("shoulder_pitch", "shoulder_roll", "elbow_pitch"),
    "waist": ("waist_yaw",),
}


def _columns(names: Sequence[str], prefix: str, joints: Sequence[str]) -> np.ndarray:
    return np.array([list(names).index(f"{prefix}{joint}") for joint in joints])


def stride_frequency(angles: np.ndarray, dt: float) -> float:
    """Spectral peak (Hz) of joint angles [T, J] sampled every dt s; 0.0 when there is no stride."""
    angles = np.asarray(angles, np.float64)
    if angles.shape[0] < 8 or float(np.max(np.std(angles, axis=0))) < MIN_MOTION_RAD:
        return 0.0
    centred = angles - angles.mean(axis=0)
    window = np.hanning(angles.shape[0])[:, None]
    power = np.sum(np.abs(np.fft.rfft(centred * window, axis=0)) ** 2, axis=1)
    freqs = np.fft.rfftfreq(angles.shape[0], dt)
    band = (freqs >= MIN_STRIDE_HZ) & (freqs <= MAX_STRIDE_HZ)
    if not band.any() or power[1:].sum() <= 0:
        return 0.0
    peak = int(np.argmax(np.where(band, power, -1.0)))
    if power[peak] < MIN_PEAK_FRACTION * power[1:].sum():
        return 0.0
    # Parabolic interpolation between bins: the peak of a sine between two bins is not on either.
    if 0 < peak < len(power) - 1:
        a, b, c = np.log(power[peak - 1 : peak + 2] + 1e-300)
        denom = a - 2 * b + c
        offset = 0.5 * (a - c) / denom if denom < 0 else 0.0
        return float(freqs[peak] + offset * (freqs[1] - freqs[0]))
    return float(freqs[peak])


def joint_amplitudes(frames: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """Half the 5-95th percentile range of each joint's angle, averaged per group (rad)."""
    out = {}
    for group, suffixes in JOINT_GROUPS.items():
        joints = [
            n[len("jpos_") :] for n in names if n.startswith("jpos_") and n.endswith(suffixes)
        ]
        cols = _columns(names, "jpos_", joints)
        low, high = np.percentile(frames[:, cols], [5, 95], axis=0)
        out[group] = float(np.mean((high - low) / 2))
    return out


def foot_clearance(frames: np.ndarray, names: Sequence[str]) -> float:
    """Swing height (m): per foot, the 95th percentile of its height above its lowest 5%."""
    root = frames[:, list(names).index("root_height")]
    heights = []
    for side in ("left", "right"):
        z = root + frames[:, list(names).index(f"{side}_foot_z")]
        stance = np.percentile(z, 5)
        heights.append(np.percentile(z, 95) - stance)
    return float(np.mean(heights))


def dtw_distance(a: np.ndarray, b: np.ndarray) -> float:
    """DTW between trajectories a [Ta, J] and b [Tb, J]: the RMS joint difference summed along
    the cheapest monotone warping path, divided by that path's length (rad)."""
    cost = np.sqrt(np.mean(np.square(a[:, None, :] - b[None, :, :]), axis=-1))
    ta, tb = cost.shape
    total = np.full((ta + 1, tb + 1), np.inf)
    steps = np.zeros((ta + 1, tb + 1))
    total[0, 0] = 0.0
    for i in range(1, ta + 1):
        for j in range(1, tb + 1):
            moves = (total[i - 1, j - 1], total[i - 1, j], total[i, j - 1])
            k = int(np.argmin(moves))
            prev = ((i - 1, j - 1), (i - 1, j), (i, j - 1))[k]
            total[i, j] = cost[i - 1, j - 1] + moves[k]
            steps[i, j] = steps[prev] + 1
    return float(total[ta, tb] / steps[ta, tb])


def cycle_distance(policy: np.ndarray, clip: np.ndarray, dt: float, clip_hz: float) -> float:
    """Best DTW distance (rad) of one clip cycle [C, J] to any cycle-long policy segment [T, J]."""
    length = max(2, int(round(1.0 / clip_hz / dt))) if clip_hz > 0 else min(len(clip), len(policy))
    cycle = clip[:length]
    if len(policy) <= length:
        return dtw_distance(policy, cycle)
    hop = max(1, length // 4)
    return min(
        dtw_distance(policy[start : start + length], cycle)
        for start in range(0, len(policy) - length + 1, hop)
    )


def style_outcomes(
    policy_frames: np.ndarray, clip_frames: np.ndarray, names: Sequence[str], dt: float
) -> dict[str, float]:
    """Every metric above for one policy trajectory [T, F] (one episode while the robot was up)
    against one clip's frames [C, F] at the same control step dt."""
    stride = _columns(names, "jpos_", STRIDE_JOINTS)
    joints = np.array([i for i, n in enumerate(names) if n.startswith("jpos_")])
    clip_hz = stride_frequency(clip_frames[:, stride], dt)
    out = {
        "stride_hz": stride_frequency(policy_frames[:, stride], dt),
        "clip_stride_hz": clip_hz,
        "foot_clearance": foot_clearance(policy_frames, names),
        "clip_foot_clearance": foot_clearance(clip_frames, names),
        "cycle_distance": cycle_distance(
            policy_frames[:, joints], clip_frames[:, joints], dt, clip_hz
        ),
    }
    for group, value in joint_amplitudes(policy_frames, names).items():
        out[f"amplitude_{group}"] = value
    for group, value in joint_amplitudes(clip_frames, names).items():
        out[f"clip_amplitude_{group}"] = value
    return out
