"""Task families for meta-learning: a task is drawn once and held for a batch of envs.

A family is three pure functions over one task (vmap them over tasks and envs):
`sample(key) -> task`, `reset(task, key) -> State`, `step(task, state, action) -> State`.

- `PointNavTasks`: a task is a goal on a circle (envs/point_nav.py, Finn et al.'s 2D navigation).
- `DynamicsTasks`: a task is one draw of WildRobot dynamics over the training ranges of the task's
  config (`randomization.floor_friction`, `.mass_scale`, `.kp_scale`, `latency.action_substeps`,
  the ranges the TTA suite calls its training side): floor friction, a scale of every body's mass,
  a scale of every servo's gain and the action latency, the same for every env of the task.
  Commands, pushes and noise vary per env and episode as in training.
"""

from __future__ import annotations

from typing import Any, Protocol

import flax
import jax
import jax.numpy as jnp
from brax.envs.base import Env, State

from wildrobot.envs.point_nav import PointNav


class TaskFamily(Protocol):
    observation_size: int
    action_size: int

    def sample(self, key: jax.Array) -> Any: ...

    def reset(self, task: Any, key: jax.Array) -> State: ...

    def step(self, task: Any, state: State, action: jax.Array) -> State: ...


class PointNavTasks:
    """Goals at `goal_radius` in uniformly drawn directions."""

    def __init__(self, env: PointNav | None = None) -> None:
        self.env = env if env is not None else PointNav()
        self.observation_size = self.env.observation_size
        self.action_size = self.env.action_size

    def sample(self, key: jax.Array) -> jax.Array:
        return self.env.sample_goal(key)

    def reset(self, task: jax.Array, key: jax.Array) -> State:
        return self.env.reset_to(key, task)

    def step(self, task: jax.Array, state: State, action: jax.Array) -> State:
        del task  # the goal is in the state
        return self.env.step(state, action)


@flax.struct.dataclass
class Dynamics:
    """One WildRobot dynamics task (scalars)."""

    floor_friction: jax.Array
    mass_scale: jax.Array
    kp_scale: jax.Array
    action_substeps: jax.Array  # int32: physics substeps before a new action acts


class DynamicsTasks:
    """WildRobot dynamics draws over `ranges` (default: the env config's training ranges).

    ranges: {"floor_friction" | "mass_scale" | "kp_scale" | "action_substeps": (low, high)};
    a bench passes wider ones to test beyond the training range.
    """

    FIELDS = ("floor_friction", "mass_scale", "kp_scale", "action_substeps")

    def __init__(self, env: Env, ranges: dict[str, tuple[float, float]] | None = None) -> None:
        cfg = env.config
        self.env = env
        self.ranges = {
            "floor_friction": tuple(cfg.randomization.floor_friction),
            "mass_scale": tuple(cfg.randomization.mass_scale),
            "kp_scale": tuple(cfg.randomization.kp_scale),
            "action_substeps": tuple(cfg.latency.action_substeps),
        }
        for name, bounds in (ranges or {}).items():
            if name not in self.ranges:
                raise ValueError(f"ranges: unknown field {name!r}; known: {', '.join(self.FIELDS)}")
            if len(bounds) != 2 or bounds[0] > bounds[1]:
                raise ValueError(f"ranges.{name}: need (low, high) with low <= high, got {bounds}")
            self.ranges[name] = tuple(bounds)
        self.observation_size = env.observation_size
        self.action_size = env.action_size

    def sample(self, key: jax.Array) -> Dynamics:
        k_friction, k_mass, k_kp, k_delay = jax.random.split(key, 4)

        def uniform(k, name):
            low, high = self.ranges[name]
            return jax.random.uniform(k, (), minval=low, maxval=high)

        low, high = self.ranges["action_substeps"]
        return Dynamics(
            floor_friction=uniform(k_friction, "floor_friction"),
            mass_scale=uniform(k_mass, "mass_scale"),
            kp_scale=uniform(k_kp, "kp_scale"),
            action_substeps=jax.random.randint(k_delay, (), int(low), int(high) + 1),
        )

    def _model(self, task: Dynamics):
        return self.env.shifted_model(
            floor_friction=task.floor_friction,
            mass_scale=task.mass_scale,
            kp_scale=task.kp_scale,
            com_offset=jnp.zeros(3),
            gravity_scale=jnp.ones(()),
        )

    def _hold_latency(self, task: Dynamics, state: State) -> State:
        info = dict(state.info)
        info["action_substeps"] = task.action_substeps.astype(info["action_substeps"].dtype)
        return state.replace(info=info)

    def reset(self, task: Dynamics, key: jax.Array) -> State:
        with self.env.using_model(self._model(task)):
            state = self.env.reset(key)
        return self._hold_latency(task, state)

    def step(self, task: Dynamics, state: State, action: jax.Array) -> State:
        # A new episode inside the env (after a fall) redraws its latency: hold the task's.
        with self.env.using_model(self._model(task)):
            state = self.env.step(self._hold_latency(task, state), action)
        return self._hold_latency(task, state)


def make_task_family(task: str, env_overrides: dict[str, Any] | None = None) -> TaskFamily:
    """The family of a MamlSpec task name: "PointNav" or a registered WildRobot task."""
    if task == "PointNav":
        return PointNavTasks()
    from wildrobot.envs import registry

    return DynamicsTasks(registry.make(task, config_overrides=dict(env_overrides or {})))
