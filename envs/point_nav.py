"""PointNav: 2-D navigation to a hidden per-task goal (Finn et al. 2017's MAML sanity task).

A point starts at the origin and moves by its action (a velocity, clipped to [-1, 1] per axis and
scaled by `step_size`); the reward is its progress towards the goal this step (the decrease of
its distance to it), so an episode's return is how much closer it ended than it started. The goal is part of the
state but NOT of the observation (the position only), so one policy cannot serve every goal: it
has to adapt, which is what meta-learning is measured on. A task is a goal: `reset_to(rng, goal)`
starts an episode towards it; `reset(rng)` draws a goal direction at `goal_radius` (Brax API).
Episodes never terminate; their length is the caller's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from brax.envs.base import Env, State

OBS_SIZE = 2  # position
ACTION_SIZE = 2


class PointNav(Env):
    """pipeline_state is [position(2), goal(2)]; obs is the position."""

    def __init__(self, goal_radius: float = 1.0, step_size: float = 0.1) -> None:
        if not 0.0 < goal_radius <= 100.0:
            raise ValueError(f"goal_radius must be in (0, 100], got {goal_radius}")
        if not 0.0 < step_size <= 10.0:
            raise ValueError(f"step_size must be in (0, 10], got {step_size}")
        self.goal_radius = float(goal_radius)
        self.step_size = float(step_size)

    def sample_goal(self, rng: jax.Array) -> jax.Array:
        """A goal at `goal_radius` in a uniformly drawn direction."""
        angle = jax.random.uniform(rng, (), minval=-jnp.pi, maxval=jnp.pi)
        return self.goal_radius * jnp.stack([jnp.cos(angle), jnp.sin(angle)])

    def reset_to(self, rng: jax.Array, goal: jax.Array) -> State:
        del rng  # every episode starts at the origin
        position = jnp.zeros(2)
        return State(
            pipeline_state=jnp.concatenate([position, goal]),
            obs=position,
            reward=jnp.zeros(()),
            done=jnp.zeros(()),
            metrics={"distance": jnp.linalg.norm(goal)},
            info={},
        )

    def reset(self, rng: jax.Array) -> State:
        key_goal, key_reset = jax.random.split(rng)
        return self.reset_to(key_reset, self.sample_goal(key_goal))

    def step(self, state: State, action: jax.Array) -> State:
        position, goal = jnp.split(state.pipeline_state, 2)
        before = jnp.linalg.norm(position - goal)
        position = position + self.step_size * jnp.clip(action, -1.0, 1.0)
        distance = jnp.linalg.norm(position - goal)
        return state.replace(
            pipeline_state=jnp.concatenate([position, goal]),
            obs=position,
            reward=before - distance,
            metrics={"distance": distance},
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
