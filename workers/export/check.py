"""Checks an exported ONNX policy against the JAX policy it came from.

Both use one jitted single-env `reset`/`step` (`Stepper`), so the check compiles the env once.
`rollout_observations`: real observations, from rollouts of the JAX policy on the task's env.
`closed_loop`: the same env, seed and start state driven once by each policy, step by step;
the per-step gap between their observations says how long the ONNX-driven rollout follows the
JAX one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Policy = Callable[[np.ndarray], np.ndarray]  # [N, obs] -> [N, action]


class Stepper:
    """An env's reset and step, jitted once, for host-side loops over one env."""

    def __init__(self, env: Any) -> None:
        self.env = env
        self.reset = jax.jit(env.reset)
        self.step = jax.jit(env.step)

    def act(self, state: Any, policy: Policy) -> Any:
        action = np.asarray(policy(np.asarray(state.obs)[None]))[0]
        return self.step(state, jnp.asarray(action))


def rollout_observations(stepper: Stepper, policy: Policy, seeds: int, steps: int) -> np.ndarray:
    """[seeds * steps, obs]: what `policy` sees in `seeds` rollouts of `steps` control steps."""
    observations = []
    for seed in range(seeds):
        state = stepper.reset(jax.random.PRNGKey(seed))
        for _ in range(steps):
            observations.append(np.asarray(state.obs))
            state = stepper.act(state, policy)
    return np.stack(observations)


def batch_difference(jax_policy: Policy, onnx_policy: Policy, obs: np.ndarray) -> float:
    """max |a_jax - a_onnx| over the batch."""
    return float(np.max(np.abs(np.asarray(jax_policy(obs)) - onnx_policy(obs))))


def closed_loop(
    stepper: Stepper, jax_policy: Policy, onnx_policy: Policy, steps: int, seed: int = 0
) -> np.ndarray:
    """[steps]: max |obs_jax - obs_onnx| after each step of two rollouts from the same reset.

    Each rollout feeds its own policy's actions back into the env.
    """
    start = stepper.reset(jax.random.PRNGKey(seed))
    a, b = start, start
    gaps = np.zeros(steps)
    for t in range(steps):
        a, b = stepper.act(a, jax_policy), stepper.act(b, onnx_policy)
        gaps[t] = np.max(np.abs(np.asarray(a.obs) - np.asarray(b.obs)))
    return gaps


def steps_followed(gaps: np.ndarray, tolerance: float) -> int:
    """How many steps from the start the gap stays within tolerance."""
    over = np.nonzero(gaps > tolerance)[0]
    return int(over[0]) if over.size else len(gaps)
