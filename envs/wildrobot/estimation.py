"""What a state estimator on the robot gives: a simulator State built from one measured
observation, for methods that may use only what the robot measures (TTA's best_of_n lookahead).
Public through `WildRobotEnv.state_from_measurement`; see its docstring for what is measured
and what is assumed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
from brax.envs.base import State
from mujoco import mjx

if TYPE_CHECKING:
    from .base import WildRobotEnv


def state_from_measurement(env: WildRobotEnv, obs: jax.Array, info: Mapping[str, Any]) -> State:
    """`env.state_from_measurement(obs [OBS_SIZE], info)`; unbatched, traceable."""
    from .base import observation_slice  # base imports this module

    gravity = obs[observation_slice("gravity")]
    gyro = obs[observation_slice("gyro")]
    joint_pos = (
        obs[observation_slice("joint_pos")]
        + env._home_joint_pos
        + env.sys.actuator_biasprm[:, 0] / env.sys.actuator_gainprm[:, 0]
    )
    qpos = env._home_qpos.at[env._qpos_adr].set(joint_pos)
    qpos = qpos.at[3:7].set(jnp.array([1.0, 0.0, 0.0, 0.0]))
    data = env._data_template.replace(qpos=qpos, ctrl=env._home_ctrl)
    # The IMU's orientation relative to the base, at these joint angles (base upright).
    relative = mjx.kinematics(env.sys, data).site_xmat[env._imu_site]
    # gravity reading g = R_imu^T (0, 0, -1) and R_imu = R_base relative: the base turns
    # relative @ g onto (0, 0, -1).
    down_in_base = relative @ (gravity / jnp.maximum(jnp.linalg.norm(gravity), 1e-6))
    quat = _quat_between(down_in_base, jnp.array([0.0, 0.0, -1.0]))
    qpos = qpos.at[3:7].set(quat)
    feet = mjx.kinematics(env.sys, data.replace(qpos=qpos)).site_xpos[env._foot_sites]
    home = mjx.kinematics(env.sys, data.replace(qpos=env._home_qpos))
    lift = jnp.min(home.site_xpos[env._foot_sites][:, 2]) - jnp.min(feet[:, 2])
    qpos = qpos.at[2].add(lift)
    qvel = (
        jnp.zeros(env.sys.nv)
        .at[3:6]
        .set(relative @ gyro)
        .at[env._qvel_adr]
        .set(obs[observation_slice("joint_vel")])
    )
    data = data.replace(qpos=qpos, qvel=qvel)
    data = mjx.com_vel(env.sys, mjx.com_pos(env.sys, mjx.kinematics(env.sys, data)))
    info = {
        **info,
        "imu_prev": jnp.concatenate([gravity, gyro]),
        "feet_air_time": jnp.zeros(2),
        "last_contact": jnp.ones(2, dtype=bool),
        "last_foot_pos": data.site_xpos[env._foot_sites],
        "push_force": jnp.zeros_like(info["push_force"]),
    }
    metrics = {f"reward/{name}": jnp.zeros(()) for name in env.REWARD_TERMS}
    return State(data, obs, jnp.zeros(()), jnp.zeros(()), metrics, info)


def _quat_between(a: jax.Array, b: jax.Array) -> jax.Array:
    """The smallest rotation (w, x, y, z) taking unit vector a [3] onto unit vector b [3]; for
    opposite vectors (undefined axis), a half turn about x."""
    w = 1.0 + jnp.dot(a, b)
    xyz = jnp.cross(a, b)
    quat = jnp.concatenate([w[None], xyz])
    flipped = jnp.array([0.0, 1.0, 0.0, 0.0])
    quat = jnp.where(w > 1e-6, quat, flipped)
    return quat / jnp.linalg.norm(quat)
