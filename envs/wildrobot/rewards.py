"""Reward terms: small pure functions returning unweighted scalars.

Weights (and signs) live in each task's config under `reward_weights`; a term's name there is the
name of its function here. Conventions follow MuJoCo Playground's joystick envs: tracking terms
are exp(-err^2 / sigma) in [0, 1], penalties are non-negative squared magnitudes with negative
weights.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def tracking_lin_vel(command: jax.Array, local_linvel: jax.Array, sigma: float) -> jax.Array:
    """exp(-|v_cmd_xy - v_xy|^2 / sigma); command [3] = (vx, vy, yaw rate), local_linvel [3]."""
    error = jnp.sum(jnp.square(command[:2] - local_linvel[:2]))
    return jnp.exp(-error / sigma)


def tracking_ang_vel(command: jax.Array, yaw_rate: jax.Array, sigma: float) -> jax.Array:
    """exp(-(wz_cmd - wz)^2 / sigma); yaw_rate [] is the pelvis yaw rate about world z."""
    return jnp.exp(-jnp.square(command[2] - yaw_rate) / sigma)


def lin_vel_z(local_linvel: jax.Array) -> jax.Array:
    """Squared vertical pelvis velocity [] (bouncing)."""
    return jnp.square(local_linvel[2])


def ang_vel_xy(gyro: jax.Array) -> jax.Array:
    """Squared roll and pitch rates of the torso [] (wobbling)."""
    return jnp.sum(jnp.square(gyro[:2]))


def orientation(gravity: jax.Array) -> jax.Array:
    """Squared horizontal part of gravity in the IMU frame []: 0 when the torso is upright."""
    return jnp.sum(jnp.square(gravity[:2]))


def base_height(height: jax.Array, target: float) -> jax.Array:
    """Squared pelvis height error [] in m^2."""
    return jnp.square(height - target)


def joint_pose(joint_pos_rel: jax.Array) -> jax.Array:
    """Squared distance of the joints [17] from home []."""
    return jnp.sum(jnp.square(joint_pos_rel))


def torques(actuator_force: jax.Array) -> jax.Array:
    """Squared servo torques [17] summed []."""
    return jnp.sum(jnp.square(actuator_force))


def action_rate(action: jax.Array, last_action: jax.Array) -> jax.Array:
    """Squared change of the action [17] between control steps []."""
    return jnp.sum(jnp.square(action - last_action))


def alive() -> jax.Array:
    """1 per control step survived."""
    return jnp.ones(())


def termination(done: jax.Array) -> jax.Array:
    """1 on the step the robot falls []."""
    return done.astype(jnp.float32)


def feet_air_time(
    air_time: jax.Array, first_contact: jax.Array, command: jax.Array, threshold: float
) -> jax.Array:
    """Rewards steps longer than `threshold` s at touchdown, only while asked to move.

    air_time [2] (s, before touchdown), first_contact [2] (bool), command [3].
    """
    moving = jnp.linalg.norm(command) > 0.05
    return jnp.sum((air_time - threshold) * first_contact) * moving


def feet_phase(
    foot_height: jax.Array,
    phase: jax.Array,
    command: jax.Array,
    swing_height: float,
    sigma: float,
) -> jax.Array:
    """How well the feet follow the gait clock [], while asked to move.

    foot_height [2] (m above the floor), phase [2] (rad): a foot swings while sin(phase) > 0,
    with target height swing_height * sin(phase), and stands (target 0) otherwise.
    exp(-sum((height - target)^2) / sigma), in (0, 1].
    """
    moving = jnp.linalg.norm(command) > 0.05
    target = swing_height * jnp.maximum(jnp.sin(phase), 0.0)
    error = jnp.sum(jnp.square(foot_height - target))
    return jnp.exp(-error / sigma) * moving


def feet_slip(foot_contact: jax.Array, foot_vel_xy: jax.Array) -> jax.Array:
    """Squared horizontal speed of feet in contact []; foot_vel_xy [2, 2]."""
    return jnp.sum(foot_contact * jnp.sum(jnp.square(foot_vel_xy), axis=-1))


def stand_still(joint_pos_rel: jax.Array, command: jax.Array) -> jax.Array:
    """Distance from home [] while the command is (near) zero."""
    standing = jnp.linalg.norm(command) <= 0.05
    return jnp.sum(jnp.abs(joint_pos_rel)) * standing
