"""The reference-clip file format: one `.npz` per clip, validated on load and on save.

A clip stores whole MuJoCo `qpos` frames so that any feature an AMP discriminator wants (root
velocities, joint positions and velocities, feet positions) can be computed from it with the same
model the policy runs on, instead of trusting precomputed features whose conventions may drift.

Fields (all stored as numpy arrays inside the `.npz`):
    name         str, the clip's name.
    fps          float, frames per second, in (0, 1000].
    qpos         [T, 24] float64, T >= 2: MuJoCo qpos frames of the project's MJCF, in the MJCF's
                 qpos order: root position xyz (m, world), root quaternion wxyz (unit), then the
                 17 hinge angles (rad) in the MJCF's *tree* order, which is `MJCF_JOINT_ORDER`
                 (waist, left arm, right arm, left leg, right leg). This is NOT the order of
                 `constants.JOINT_NAMES` (waist, legs, arms); use `joint_positions()` to get the
                 joints in JOINT_NAMES (actuator) order.
    joint_names  [17] str, the names of qpos[:, 7:]'s columns; must equal `MJCF_JOINT_ORDER`, so a
                 clip made for a model with another joint order is refused, not silently misread.
    loop         "wrap" (the clip is one or more whole cycles; time past the end continues from the
                 start, see library.py) or "clamp" (time is held at the ends).
    weight       float, sampling weight in the library, finite and > 0.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import mujoco
import numpy as np

from ..wildrobot import constants

NUM_JOINTS = len(constants.JOINT_NAMES)
ROOT_QPOS = 7  # free joint: xyz + quaternion wxyz
NQ = ROOT_QPOS + NUM_JOINTS
NV = 6 + NUM_JOINTS
LOOP_MODES = ("wrap", "clamp")
MAX_FPS = 1000.0
QUAT_NORM_TOL = 1e-3


@functools.lru_cache(maxsize=1)
def load_model() -> mujoco.MjModel:
    """The project's MJCF (constants.XML_PATH), loaded once per process."""
    return mujoco.MjModel.from_xml_path(str(constants.XML_PATH))


@functools.lru_cache(maxsize=1)
def mjcf_joint_order() -> tuple[str, ...]:
    """Names of the MJCF's hinge joints in qpos order (after the free root)."""
    model = load_model()
    names = []
    for j in range(model.njnt):
        if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE:
            names.append(model.joint(j).name)
    return tuple(names)


def joint_index_in_clip() -> np.ndarray:
    """[17] int: column of qpos[:, 7:] holding each joint of constants.JOINT_NAMES, in that order."""
    order = mjcf_joint_order()
    return np.array([order.index(name) for name in constants.JOINT_NAMES])


@dataclass(frozen=True)
class Motion:
    """One reference clip. `qpos` is [T, 24] in MJCF qpos order (see the module docstring)."""

    name: str
    fps: float
    qpos: np.ndarray
    loop: str = "wrap"
    weight: float = 1.0
    joint_names: tuple[str, ...] = field(default_factory=mjcf_joint_order)

    @property
    def num_frames(self) -> int:
        return int(self.qpos.shape[0])

    @property
    def duration(self) -> float:
        """Seconds from the first to the last frame: (T - 1) / fps."""
        return (self.num_frames - 1) / self.fps

    def joint_positions(self) -> np.ndarray:
        """[T, 17] joint angles in constants.JOINT_NAMES (actuator) order."""
        return self.qpos[:, ROOT_QPOS:][:, joint_index_in_clip()]


def validate(motion: Motion) -> None:
    """Raise ValueError naming the offending field and the limit it breaks."""
    if not isinstance(motion.name, str) or not motion.name:
        raise ValueError("name: must be a non-empty string")
    fps = float(motion.fps)
    if not np.isfinite(fps) or not 0.0 < fps <= MAX_FPS:
        raise ValueError(f"fps: {motion.fps} is outside (0, {MAX_FPS:g}]")
    if motion.loop not in LOOP_MODES:
        raise ValueError(f"loop: {motion.loop!r} is not one of {LOOP_MODES}")
    weight = float(motion.weight)
    if not np.isfinite(weight) or weight <= 0.0:
        raise ValueError(f"weight: {motion.weight} must be finite and > 0")
    expected_joints = mjcf_joint_order()
    if tuple(motion.joint_names) != expected_joints:
        raise ValueError(
            f"joint_names: {len(motion.joint_names)} names {tuple(motion.joint_names)} differ from "
            f"the model's {len(expected_joints)} joints in qpos order {expected_joints}"
        )
    qpos = np.asarray(motion.qpos)
    if qpos.ndim != 2 or qpos.shape[1] != NQ:
        raise ValueError(
            f"qpos: shape {qpos.shape} is not [T, {NQ}] (7 root + {NUM_JOINTS} joints)"
        )
    if qpos.shape[0] < 2:
        raise ValueError(f"qpos: {qpos.shape[0]} frames, need T >= 2")
    if not np.all(np.isfinite(qpos)):
        raise ValueError("qpos: contains non-finite values (NaN or inf)")
    norms = np.linalg.norm(qpos[:, 3:7], axis=1)
    worst = float(np.max(np.abs(norms - 1.0)))
    if worst > QUAT_NORM_TOL:
        raise ValueError(
            f"qpos: root quaternion (columns 3:7) norm is off unit by {worst:.3g} > {QUAT_NORM_TOL}"
        )


def save_motion(path: str | Path, motion: Motion) -> None:
    """Validate `motion` and write it as an uncompressed `.npz` at `path`."""
    validate(motion)
    with open(path, "wb") as f:
        np.savez(
            f,
            name=np.array(motion.name),
            fps=np.array(float(motion.fps)),
            qpos=np.asarray(motion.qpos, dtype=np.float64),
            loop=np.array(motion.loop),
            weight=np.array(float(motion.weight)),
            joint_names=np.array(motion.joint_names),
        )


_REQUIRED = ("name", "fps", "qpos", "loop", "weight", "joint_names")


def load_motion(path: str | Path) -> Motion:
    """Read and validate a clip written by `save_motion` (no pickled objects are accepted)."""
    with np.load(path, allow_pickle=False) as data:
        missing = [key for key in _REQUIRED if key not in data.files]
        if missing:
            raise ValueError(f"{missing[0]}: missing from {path}")
        motion = Motion(
            name=str(data["name"]),
            fps=float(data["fps"]),
            qpos=np.array(data["qpos"], dtype=np.float64),
            loop=str(data["loop"]),
            weight=float(data["weight"]),
            joint_names=tuple(str(n) for n in data["joint_names"]),
        )
    validate(motion)
    return motion
