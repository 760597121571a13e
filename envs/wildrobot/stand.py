"""WildRobotStand: keep balance in the home pose and recover from pushes.

The command is always zero (it stays in the observation so stand and walk policies share one
observation layout); the tracking terms then reward standing still.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from wildrobot.envs.wildrobot import rewards
from wildrobot.envs.wildrobot.base import Signals, WildRobotEnv, base_config


def default_config() -> ml_collections.ConfigDict:
    cfg = base_config()
    cfg.reward_weights = {
        "tracking_lin_vel": 1.0,
        "tracking_ang_vel": 0.5,
        "lin_vel_z": -0.5,
        "ang_vel_xy": -0.05,
        "orientation": -5.0,
        "base_height": -50.0,
        "joint_pose": -0.5,
        "torques": -1e-3,
        "action_rate": -0.01,
        "alive": 0.5,
        "termination": -50.0,
    }
    return cfg


class WildRobotStand(WildRobotEnv):
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

    @staticmethod
    def default_config() -> ml_collections.ConfigDict:
        return default_config()

    def _init_command(self, rng: jax.Array) -> dict[str, jax.Array]:
        del rng
        return {"command": jnp.zeros(3)}

    def _update_command(self, info: dict[str, Any], rng: jax.Array) -> dict[str, jax.Array]:
        del rng
        return {"command": info["command"]}

    def _reward_terms(self, s: Signals) -> dict[str, jax.Array]:
        return {
            **self._shared_reward_terms(s),
            "joint_pose": rewards.joint_pose(s.joint_pos_rel),
            "alive": rewards.alive(),
        }
