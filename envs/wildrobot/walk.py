"""WildRobotWalk: track a commanded forward, lateral and yaw velocity.

The command (vx, vy, yaw rate) is resampled every `command.resample_steps` control steps; with
probability `command.zero_probability` it is zero, so standing is part of the task.
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
    cfg.command = {
        "vx": (-0.3, 0.5),  # m/s
        "vy": (-0.2, 0.2),  # m/s
        "yaw_rate": (-1.0, 1.0),  # rad/s
        "resample_steps": 250,
        "zero_probability": 0.2,
    }
    cfg.reward_weights = {
        "tracking_lin_vel": 1.5,
        "tracking_ang_vel": 0.8,
        "lin_vel_z": -0.5,
        "ang_vel_xy": -0.05,
        "orientation": -5.0,
        "base_height": -20.0,
        "torques": -1e-3,
        "action_rate": -0.01,
        "feet_air_time": 2.0,
        "feet_slip": -0.1,
        "stand_still": -0.5,
        "termination": -50.0,
    }
    return cfg


class WildRobotWalk(WildRobotEnv):
    REWARD_TERMS = (
        "tracking_lin_vel",
        "tracking_ang_vel",
        "lin_vel_z",
        "ang_vel_xy",
        "orientation",
        "base_height",
        "torques",
        "action_rate",
        "feet_air_time",
        "feet_slip",
        "stand_still",
        "termination",
    )

    @staticmethod
    def default_config() -> ml_collections.ConfigDict:
        return default_config()

    def _sample_command(self, rng: jax.Array) -> jax.Array:
        command = self._config.command
        key_vx, key_vy, key_yaw, key_zero = jax.random.split(rng, 4)
        value = jnp.array(
            [
                jax.random.uniform(key_vx, (), minval=command.vx[0], maxval=command.vx[1]),
                jax.random.uniform(key_vy, (), minval=command.vy[0], maxval=command.vy[1]),
                jax.random.uniform(
                    key_yaw, (), minval=command.yaw_rate[0], maxval=command.yaw_rate[1]
                ),
            ]
        )
        standing = jax.random.bernoulli(key_zero, command.zero_probability)
        return jnp.where(standing, 0.0, value)

    def _init_command(self, rng: jax.Array) -> dict[str, jax.Array]:
        return {"command": self._sample_command(rng), "command_timer": jnp.zeros((), jnp.int32)}

    def _update_command(self, info: dict[str, Any], rng: jax.Array) -> dict[str, jax.Array]:
        timer = info["command_timer"] + 1
        due = timer >= self._config.command.resample_steps
        return {
            "command": jnp.where(due, self._sample_command(rng), info["command"]),
            "command_timer": jnp.where(due, 0, timer),
        }

    def _reward_terms(self, s: Signals) -> dict[str, jax.Array]:
        cfg = self._config
        return {
            **self._shared_reward_terms(s),
            "feet_air_time": rewards.feet_air_time(
                s.air_time, s.first_contact, s.command, cfg.feet_air_time_threshold
            ),
            "feet_slip": rewards.feet_slip(s.foot_contact, s.foot_vel_xy),
            "stand_still": rewards.stand_still(s.joint_pos_rel, s.command),
        }
