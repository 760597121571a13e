"""Evaluation rollouts: one episode per env, mean length, fall rate, velocity tracking error.

`make_evaluator` compiles its rollout once per env and shapes (the policy parameters are an
argument), so periodic evaluation during training costs no compile after the first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from brax.envs.base import Env, State
from brax.envs.wrappers import training as env_wrappers

Params = Any
PolicyFn = Callable[[Params, jax.Array, jax.Array], jax.Array]
EvaluateFn = Callable[..., dict[str, float]]


def make_evaluator(
    policy_fn: PolicyFn,
    base_env: Env,
    num_envs: int,
    episode_length: int,
    policy_state: jax.Array | None = None,
) -> EvaluateFn:
    """evaluate(params, rng, commands=None) -> report; compiled once for the env and shapes.

    policy_fn: (params, obs [num_envs, obs_dim], key) -> actions [num_envs, action_size]; the
    params are an argument of the compiled rollout, so new params never recompile it.
    policy_state: a recurrent policy's initial state [num_envs, ...] (zeros: every env starts
    an episode); then policy_fn is (params, obs, key, state) -> (actions, state). Each env runs
    one episode, so the state is never reset mid-rollout.
    commands: optional [num_envs, 3]: each env's fixed command (envs with `set_command`, the
    WildRobot tasks; give them a config whose command is never resampled).

    One episode per env (no auto-reset) on the unrandomized env. The report has
    mean_episode_length, fall_rate (episodes that terminated before the time limit) and, for envs
    with a velocity command and a floating base, velocity_tracking_error (|commanded - actual|
    planar base velocity in the heading frame, m/s), forward_speed (heading-frame vx, m/s) and
    yaw_rate (rad/s), averaged over the steps each env was alive; with per-env `values` too
    (those and vx_tracking_error, |commanded - actual| forward velocity).
    """
    env = env_wrappers.EpisodeWrapper(env_wrappers.VmapWrapper(base_env), episode_length, 1)
    probe = jax.eval_shape(base_env.reset, jax.random.PRNGKey(0))
    has_command = "command" in probe.info and hasattr(probe.pipeline_state, "qvel")

    def step(carry, key, params):
        state, alive, sums, memory = carry
        if memory is None:
            actions = policy_fn(params, state.obs, key)
        else:
            actions, memory = policy_fn(params, state.obs, key, memory)
        state = env.step(state, actions)
        if has_command:
            sums = sums + jnp.where(alive[:, None] > 0, velocity_report(state), 0.0)
        fell = state.done * (1.0 - state.info["truncation"])
        return (state, alive * (1.0 - state.done), sums, memory), (alive, alive * fell)

    @jax.jit
    def rollout(params, rng, commands):
        key_reset, key_actions = jax.random.split(rng)
        state = env.reset(jax.random.split(key_reset, num_envs))
        if commands is not None:
            state = jax.vmap(base_env.set_command)(state, commands)
        (_, _, sums, _), (alive_steps, falls) = jax.lax.scan(
            lambda carry, key: step(carry, key, params),
            (state, jnp.ones(num_envs), jnp.zeros((num_envs, 4)), policy_state),
            jax.random.split(key_actions, episode_length),
        )
        lengths = jnp.sum(alive_steps, axis=0)
        return lengths, jnp.sum(falls, axis=0), sums / jnp.maximum(lengths, 1.0)[:, None]

    def evaluate(params, rng, commands=None) -> dict[str, Any]:
        lengths, falls, means = jax.device_get(rollout(params, rng, commands))
        report: dict[str, Any] = {
            "num_envs": num_envs,
            "episode_length_limit": episode_length,
            "mean_episode_length": float(lengths.mean()),
            "fall_rate": float(falls.mean()),
        }
        if has_command:
            report["velocity_tracking_error"] = float(means[:, 0].mean())
            report["forward_speed"] = float(means[:, 1].mean())
            report["yaw_rate"] = float(means[:, 2].mean())
            report["values"] = {
                "episode_length": lengths,
                "fell": falls,
                "velocity_tracking_error": means[:, 0],
                "forward_speed": means[:, 1],
                "yaw_rate": means[:, 2],
                "vx_tracking_error": means[:, 3],
            }
        return report

    return evaluate


def evaluate_policy(
    policy_fn: Callable[..., Any],
    base_env: Env,
    num_envs: int,
    episode_length: int,
    rng: jax.Array,
    policy_state: jax.Array | None = None,
) -> dict[str, float]:
    """One evaluation of policy_fn (obs, key) -> actions, or with `policy_state` [num_envs, ...]
    (obs, key, state) -> (actions, state); see make_evaluator (scalars only).

    Compiles a rollout for this call; to evaluate repeatedly, keep a make_evaluator.
    """
    evaluate = make_evaluator(
        lambda _, *args: policy_fn(*args), base_env, num_envs, episode_length, policy_state
    )
    report = evaluate(None, rng)
    report.pop("values", None)
    return report


def velocity_report(state: State) -> jax.Array:
    """[B, 4]: |command[:2] - base velocity (x, y) in the heading (yaw) frame|, that frame's
    forward velocity vx, the yaw rate, and |command[0] - vx|."""
    qpos, qvel = state.pipeline_state.qpos, state.pipeline_state.qvel
    w, x, y, z = qpos[:, 3], qpos[:, 4], qpos[:, 5], qpos[:, 6]
    yaw = jnp.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
    cos, sin = jnp.cos(yaw), jnp.sin(yaw)
    vx = cos * qvel[:, 0] + sin * qvel[:, 1]
    vy = -sin * qvel[:, 0] + cos * qvel[:, 1]
    command = state.info["command"]
    error = jnp.hypot(command[:, 0] - vx, command[:, 1] - vy)
    return jnp.stack([error, vx, qvel[:, 5], jnp.abs(command[:, 0] - vx)], axis=-1)
