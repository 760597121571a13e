"""WildRobotWalk: track a commanded forward, lateral and yaw velocity.

The command (vx, vy, yaw rate) is resampled every `command.resample_steps` control steps; with
probability `command.zero_probability` it is zero, so standing is part of the task.

A gait clock (each foot's phase, the feet half a cycle apart, at a frequency drawn per episode
from `gait.frequency`) is part of the observation; while the robot is asked to move, the
`feet_phase` term rewards swing-foot heights that follow it (MuJoCo Playground's biped joystick
tasks do the same), which makes stepping easy to discover.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from . import rewards
from .base import Signals, WildRobotEnv


class WildRobotWalk(WildRobotEnv):
    NAME = "WildRobotWalk"
    HAS_GAIT = True
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
        "feet_phase",
        "feet_slip",
        "stand_still",
        "termination",
    )

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

    def _task_info(self) -> dict[str, jax.Array]:
        return {"command_timer": jnp.zeros((), jnp.int32)}

    def _phase_dt(self, rng: jax.Array) -> jax.Array:
        frequency = jax.random.uniform(
            rng, (), minval=self._config.gait.frequency[0], maxval=self._config.gait.frequency[1]
        )
        return 2.0 * jnp.pi * frequency * self._config.ctrl_dt

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
            "feet_phase": rewards.feet_phase(
                s.foot_height, s.phase, s.command, cfg.gait.swing_height, cfg.feet_phase_sigma
            ),
            "feet_slip": rewards.feet_slip(s.foot_contact, s.foot_vel_xy),
            "stand_still": rewards.stand_still(s.joint_pos_rel, s.command),
        }
