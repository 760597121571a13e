"""WildRobotStand: keep balance in the home pose and recover from pushes.

The command is always zero and the gait clock zeros (both stay in the observation so stand and
walk policies share one observation layout); the tracking terms then reward standing still.
The default pushes (4-8 N on the torso for 6 control steps, every 30-80 steps;
wildrobot.task_settings) topple a robot that only holds the home pose in most episodes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from . import rewards
from .base import Signals, WildRobotEnv


class WildRobotStand(WildRobotEnv):
    NAME = "WildRobotStand"
    REWARD_TERMS = (
        "tracking_lin_vel",
        "tracking_ang_vel",
        "lin_vel_z",
        "ang_vel_xy",
        "orientation",
        "base_height",
        "joint_pose",
        "torques",
        "action_rate",
        "alive",
        "termination",
    )

    def _sample_command(self, rng: jax.Array) -> jax.Array:
        del rng
        return jnp.zeros(3)

    def _reward_terms(self, s: Signals) -> dict[str, jax.Array]:
        return {
            **self._shared_reward_terms(s),
            "joint_pose": rewards.joint_pose(s.joint_pos_rel),
            "alive": rewards.alive(),
        }
