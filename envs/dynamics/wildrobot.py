"""The WildRobot model for inverse dynamics: its MJCF and its two feet."""

from __future__ import annotations

import functools

import mujoco

from ..wildrobot import constants
from .inverse import DynamicsModel, Foot

# Ankle pitch and roll share one anchor at the foot body's origin: that point is the ankle.
FEET = (
    Foot(name="left", body="left_foot", ankle_joint="left_ankle_pitch"),
    Foot(name="right", body="right_foot", ankle_joint="right_ankle_pitch"),
)


def load_mj_model() -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_path(str(constants.XML_PATH))


@functools.cache
def dynamics_model() -> DynamicsModel:
    """The shared WildRobot DynamicsModel (built once per process)."""
    return DynamicsModel(load_mj_model(), FEET)
