"""Style outcome metrics (workers/amp/style_outcomes.py) on signals with known answers, and on the
shipped clips: a walk clip has a stride, a statue (the stand clip held still) has none."""

from __future__ import annotations

import numpy as np
import pytest

from wildrobot.envs import registry
from wildrobot.envs.wildrobot import constants
from wildrobot.workers.amp import evaluate, features, style_outcomes
from wildrobot.workers.amp.reference import load_library

DT = 0.02  # 50 Hz control


def _sine(hz: float, amplitude: float, seconds: float, phase: float = 0.0) -> np.ndarray:
    t = np.arange(0.0, seconds, DT)
    return amplitude * np.sin(2 * np.pi * hz * t + phase)


def test_the_stride_frequency_is_the_spectral_peak() -> None:
    # 1.3 Hz falls between FFT bins (400 samples at 50 Hz: 0.125 Hz bins); the parabolic
    # interpolation lands within a tenth of a bin-width-ish of it.
    hips = np.stack([_sine(1.3, 0.3, 8.0), _sine(1.3, 0.3, 8.0, np.pi)], axis=1)
    assert style_outcomes.stride_frequency(hips, DT) == pytest.approx(1.3, abs=0.03)


def test_a_statue_and_a_tremor_have_no_stride() -> None:
    statue = np.full((400, 4), 0.2)
    assert style_outcomes.stride_frequency(statue, DT) == 0.0
    tremor = 0.002 * np.random.default_rng(0).standard_normal((400, 4))  # std 2 mrad < 10 mrad
    assert style_outcomes.stride_frequency(tremor, DT) == 0.0


def _frames(knee: np.ndarray, foot_z: np.ndarray) -> tuple[np.ndarray, list[str]]:
    names = ["root_height", *(f"jpos_{j}" for j in constants.JOINT_NAMES)]
    names += ["left_foot_z", "right_foot_z"]
    frames = np.zeros((len(knee), len(names)))
    frames[:, 0] = 0.3
    for side in ("left", "right"):
        frames[:, names.index(f"jpos_{side}_knee_pitch")] = knee
        frames[:, names.index(f"{side}_foot_z")] = foot_z - 0.3
    return frames, names


def test_amplitudes_and_clearance_of_a_known_gait() -> None:
    # Knees: 0.4 sin. Over whole periods the p-th percentile of A sin is A sin(pi (p - 1/2)), so
    # half the 5-95 range is 0.4 sin(0.45 pi) = 0.395; sampled 50 per period, within 1%.
    # Feet: height max(0, 0.05 sin): stance (5th percentile) 0; the 95th percentile solves
    # 1/2 + arcsin(x)/pi = 0.95, x = sin(0.45 pi): clearance 0.05 * 0.988 = 0.0494.
    wave = _sine(1.0, 1.0, 10.0)
    frames, names = _frames(0.4 * wave, 0.05 * np.maximum(wave, 0.0))
    amplitudes = style_outcomes.joint_amplitudes(frames, names)
    assert amplitudes["knee"] == pytest.approx(0.4 * np.sin(0.45 * np.pi), rel=1e-2)
    assert amplitudes["hip"] == amplitudes["arm"] == amplitudes["waist"] == 0.0
    clearance = style_outcomes.foot_clearance(frames, names)
    assert clearance == pytest.approx(0.05 * np.sin(0.45 * np.pi), rel=1e-2)


def test_dtw_on_a_hand_worked_pair_and_a_phase_shift() -> None:
    # a = 0, 1, 2 against b = 0, 2: local costs [[0, 2], [1, 1], [2, 0]]; the cheapest path
    # (0,0) (1,0) (2,1) costs 0 + 1 + 0 over 3 steps: 1/3.
    a, b = np.array([[0.0], [1.0], [2.0]]), np.array([[0.0], [2.0]])
    assert style_outcomes.dtw_distance(a, b) == pytest.approx(1 / 3)
    cycle = np.stack([_sine(1.0, 0.3, 1.0), _sine(1.0, 0.5, 1.0, 1.0)], axis=1)  # [50, 2]
    assert style_outcomes.dtw_distance(cycle, cycle) == 0.0
    # The same motion over 3 s, starting a third of a cycle late: some cycle-long segment
    # aligns, so the cycle distance is small next to the signal's own size (RMS ~0.29 rad).
    long = np.stack([_sine(1.0, 0.3, 3.0, 2.1), _sine(1.0, 0.5, 3.0, 3.1)], axis=1)
    assert style_outcomes.cycle_distance(long, cycle, DT, 1.0) < 0.03
    statue = np.zeros_like(long)
    assert style_outcomes.cycle_distance(statue, cycle, DT, 1.0) > 0.2


@pytest.fixture(scope="module")
def clips():
    env = registry.make("WildRobotWalk")
    frames = {
        name: evaluate.clip_frames(env, load_library([name]).motions, first_only=True)
        for name in ("walk_0.2", "stand")
    }
    return env, features.feature_names(env), frames


@pytest.mark.slow  # the clips' features compile an MJX kinematics program (~1-3 min here)
def test_the_walk_clip_strides_and_the_held_stand_pose_does_not(clips) -> None:
    env, names, frames = clips
    walk = frames["walk_0.2"]
    walk_long = np.concatenate([walk] * 4)  # the clip loops ("wrap"); 4 loops for the spectrum
    walking = style_outcomes.style_outcomes(walk_long, walk, names, env.dt)
    assert 0.5 < walking["stride_hz"] < 3.0
    assert walking["stride_hz"] == pytest.approx(walking["clip_stride_hz"], rel=0.05)
    assert walking["cycle_distance"] < 0.01  # the clip against itself
    assert walking["amplitude_knee"] > 0.05 and walking["foot_clearance"] > 0.005
    statue = np.repeat(frames["stand"][:1], len(walk_long), axis=0)
    still = style_outcomes.style_outcomes(statue, walk, names, env.dt)
    assert still["stride_hz"] == 0.0
    assert still["amplitude_knee"] == pytest.approx(0.0, abs=1e-6)
    assert still["foot_clearance"] == pytest.approx(0.0, abs=1e-6)
    assert still["cycle_distance"] > 5 * walking["cycle_distance"] + 0.02
