"""Clip format: round trip, joint order, and every validation error names its field."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from wildrobot.envs.motions.format import (
    NQ,
    Motion,
    load_motion,
    mjcf_joint_order,
    save_motion,
)
from wildrobot.envs.motions.gait import home_qpos
from wildrobot.envs.wildrobot import constants


def _motion(**changes) -> Motion:
    qpos = np.tile(home_qpos(), (5, 1))
    qpos[:, 0] = np.linspace(0.0, 0.1, 5)
    return dataclasses.replace(Motion(name="clip", fps=50.0, qpos=qpos), **changes)


def test_round_trip(tmp_path):
    motion = _motion(loop="clamp", weight=2.5)
    save_motion(tmp_path / "c.npz", motion)
    loaded = load_motion(tmp_path / "c.npz")
    assert (loaded.name, loaded.fps, loaded.loop, loaded.weight) == ("clip", 50.0, "clamp", 2.5)
    np.testing.assert_array_equal(loaded.qpos, motion.qpos)
    assert loaded.joint_names == mjcf_joint_order()
    assert loaded.duration == pytest.approx(4 / 50.0)


def test_mjcf_joint_order_differs_from_joint_names_and_is_mapped():
    # The MJCF's qpos follows its body tree (waist, arms, legs), not JOINT_NAMES (waist, legs, arms).
    order = mjcf_joint_order()
    assert sorted(order) == sorted(constants.JOINT_NAMES)
    assert order[1:4] == ("left_shoulder_pitch", "left_shoulder_roll", "left_elbow_pitch")
    motion = _motion()
    joints = motion.joint_positions()
    for k, name in enumerate(constants.JOINT_NAMES):
        np.testing.assert_array_equal(joints[:, k], motion.qpos[:, 7 + order.index(name)])


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": ""}, "name"),
        ({"fps": 0.0}, "fps"),
        ({"fps": 1000.5}, "fps"),
        ({"fps": float("nan")}, "fps"),
        ({"loop": "bounce"}, "loop"),
        ({"weight": 0.0}, "weight"),
        ({"weight": float("inf")}, "weight"),
        ({"joint_names": tuple(constants.JOINT_NAMES)}, "joint_names"),
        ({"joint_names": mjcf_joint_order()[:-1]}, "joint_names"),
        ({"qpos": np.zeros((5, NQ - 1))}, "qpos"),
        ({"qpos": np.zeros(NQ)}, "qpos"),
        ({"qpos": np.tile(home_qpos(), (1, 1))}, "qpos"),
    ],
)
def test_validation_errors_name_the_field(tmp_path, changes, field):
    with pytest.raises(ValueError, match=f"^{field}:"):
        save_motion(tmp_path / "bad.npz", _motion(**changes))


def test_non_finite_and_non_unit_quaternion_rejected(tmp_path):
    qpos = _motion().qpos.copy()
    qpos[2, 9] = np.nan
    with pytest.raises(ValueError, match="^qpos: contains non-finite"):
        save_motion(tmp_path / "bad.npz", _motion(qpos=qpos))
    qpos = _motion().qpos.copy()
    qpos[1, 3:7] *= 1.01
    with pytest.raises(ValueError, match=r"^qpos: root quaternion .* > 0.001"):
        save_motion(tmp_path / "bad.npz", _motion(qpos=qpos))


def test_load_validates_and_reports_missing_fields(tmp_path):
    good = _motion()
    np.savez(
        tmp_path / "nofps.npz",
        name="x",
        qpos=good.qpos,
        loop="wrap",
        weight=1.0,
        joint_names=np.array(good.joint_names),
    )
    with pytest.raises(ValueError, match="^fps: missing"):
        load_motion(tmp_path / "nofps.npz")
    np.savez(
        tmp_path / "badfps.npz",
        name="x",
        fps=-1.0,
        qpos=good.qpos,
        loop="wrap",
        weight=1.0,
        joint_names=np.array(good.joint_names),
    )
    with pytest.raises(ValueError, match="^fps:"):
        load_motion(tmp_path / "badfps.npz")
