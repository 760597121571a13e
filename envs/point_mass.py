"""PointMass: a tiny pure-JAX env (no MJX) that compiles in seconds, for end-to-end tests.

A 2-D point mass driven by a force must reach and hold a target near the origin. The episode
ends when it leaves a square box. It plugs into `brax.envs.wrappers.training.wrap` like any
other env, so the PPO trainer and the job service can be tested end to end in seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
from brax.envs.base import Env, State

from wildrobot import task_settings

OBS_SIZE = 6  # position (2), velocity (2), target (2)
ACTION_SIZE = 2


def default_config() -> ml_collections.ConfigDict:
    """A fresh config (wildrobot.task_settings): weights and signs of the reward terms too.

    `nan_reward_after_steps` is a test hook: each env's reward becomes NaN once it has taken
    more than this many steps in total (across episodes); -1 disables it.
    """
    return ml_collections.ConfigDict(task_settings.defaults("PointMass"))


def _reward_alive(position: jax.Array) -> jax.Array:
    del position
    return jnp.ones(())


def _reward_distance(position: jax.Array, target: jax.Array) -> jax.Array:
    return jnp.linalg.norm(position - target)


def _reward_action(action: jax.Array) -> jax.Array:
    return jnp.sum(jnp.square(action))


class PointMass(Env):
    """2-D point mass; pipeline_state is [position(2), velocity(2), target(2)]."""

    def __init__(
        self,
        config: ml_collections.ConfigDict | None = None,
        config_overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self._config = default_config() if config is None else config.copy_and_resolve_references()
        if config_overrides:
            self._config.update_from_flattened_dict(
                task_settings.validate_overrides("PointMass", config_overrides)
            )
        if set(self._config.reward_weights) != {"alive", "distance", "action"}:
            raise ValueError(f"unknown reward terms in {sorted(self._config.reward_weights)}")

    @property
    def config(self) -> ml_collections.ConfigDict:
        return self._config

    def reset(self, rng: jax.Array) -> State:
        key_position, key_target = jax.random.split(rng)
        cfg = self._config
        position = jax.random.uniform(
            key_position, (2,), minval=-cfg.init_position_range, maxval=cfg.init_position_range
        )
        target = jax.random.uniform(
            key_target, (2,), minval=-cfg.target_range, maxval=cfg.target_range
        )
        pipeline_state = jnp.concatenate([position, jnp.zeros(2), target])
        metrics = {f"reward/{name}": jnp.zeros(()) for name in cfg.reward_weights}
        info = {"total_steps": jnp.zeros((), jnp.int32)}
        return State(
            pipeline_state=pipeline_state,
            obs=pipeline_state,
            reward=jnp.zeros(()),
            done=jnp.zeros(()),
            metrics=metrics,
            info=info,
        )

    def step(self, state: State, action: jax.Array) -> State:
        cfg = self._config
        action = jnp.clip(action, -1.0, 1.0)
        position, velocity, target = jnp.split(state.pipeline_state, 3)
        velocity = velocity + cfg.dt * (cfg.force_scale * action - cfg.damping * velocity)
        position = position + cfg.dt * velocity
        terms = {
            "alive": _reward_alive(position),
            "distance": _reward_distance(position, target),
            "action": _reward_action(action),
        }
        weighted = {name: cfg.reward_weights[name] * value for name, value in terms.items()}
        reward = sum(weighted.values())
        total_steps = state.info["total_steps"] + 1
        if cfg.nan_reward_after_steps >= 0:
            reward = jnp.where(total_steps > cfg.nan_reward_after_steps, jnp.nan, reward)
        done = jnp.any(jnp.abs(position) > cfg.box_half_width).astype(jnp.float32)
        pipeline_state = jnp.concatenate([position, velocity, target])
        return state.replace(
            pipeline_state=pipeline_state,
            obs=pipeline_state,
            reward=reward,
            done=done,
            metrics={**state.metrics, **{f"reward/{name}": v for name, v in weighted.items()}},
            info={**state.info, "total_steps": total_steps},
        )

    @property
    def observation_size(self) -> int:
        return OBS_SIZE

    @property
    def action_size(self) -> int:
        return ACTION_SIZE

    @property
    def backend(self) -> str:
        return "jax"
