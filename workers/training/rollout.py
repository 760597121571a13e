"""Evaluation rollouts: one episode per env, mean length, fall rate, velocity tracking error."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from brax.envs.base import Env, State
from brax.envs.wrappers import training as env_wrappers


def evaluate_policy(
    policy_fn: Callable[[jax.Array, jax.Array], jax.Array],
    base_env: Env,
    num_envs: int,
    episode_length: int,
    rng: jax.Array,
) -> dict[str, float]:
    """One episode per env (no auto-reset) on the unrandomized env.

    policy_fn: (obs [num_envs, obs_dim], key) -> actions [num_envs, action_size].
    Returns mean_episode_length, fall_rate (episodes that terminated before the time limit)
    and, for envs with a velocity command and a floating base (the WildRobot tasks),
    velocity_tracking_error: |commanded - actual| planar base velocity in the heading frame
    (m/s), averaged over the steps each env was alive.
    """
    env = env_wrappers.EpisodeWrapper(env_wrappers.VmapWrapper(base_env), episode_length, 1)
    probe = jax.eval_shape(base_env.reset, jax.random.PRNGKey(0))
    has_command = "command" in probe.info and hasattr(probe.pipeline_state, "qvel")

    def step(carry, key):
        state, alive, tracking_sum = carry
        state = env.step(state, policy_fn(state.obs, key))
        if has_command:
            tracking_sum = tracking_sum + alive * _velocity_tracking_error(state)
        fell = state.done * (1.0 - state.info["truncation"])
        return (state, alive * (1.0 - state.done), tracking_sum), (alive, alive * fell)

    @jax.jit
    def rollout(rng):
        key_reset, key_actions = jax.random.split(rng)
        state = env.reset(jax.random.split(key_reset, num_envs))
        (_, _, tracking_sum), (alive_steps, falls) = jax.lax.scan(
            step,
            (state, jnp.ones(num_envs), jnp.zeros(num_envs)),
            jax.random.split(key_actions, episode_length),
        )
        lengths = jnp.sum(alive_steps, axis=0)
        return lengths, jnp.sum(falls, axis=0), tracking_sum / jnp.maximum(lengths, 1.0)

    lengths, falls, tracking = jax.device_get(rollout(rng))
    report = {
        "num_envs": num_envs,
        "episode_length_limit": episode_length,
        "mean_episode_length": float(lengths.mean()),
        "fall_rate": float(falls.mean()),
    }
    if has_command:
        report["velocity_tracking_error"] = float(tracking.mean())
    return report


def _velocity_tracking_error(state: State) -> jax.Array:
    """[B]: |command[:2] - base velocity (x, y) rotated into the heading (yaw) frame|."""
    qpos, qvel = state.pipeline_state.qpos, state.pipeline_state.qvel
    w, x, y, z = qpos[:, 3], qpos[:, 4], qpos[:, 5], qpos[:, 6]
    yaw = jnp.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
    cos, sin = jnp.cos(yaw), jnp.sin(yaw)
    vx = cos * qvel[:, 0] + sin * qvel[:, 1]
    vy = -sin * qvel[:, 0] + cos * qvel[:, 1]
    command = state.info["command"]
    return jnp.hypot(command[:, 0] - vx, command[:, 1] - vy)
