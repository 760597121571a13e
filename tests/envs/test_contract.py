"""Contract of every registered env: jitted reset/step, sizes, finiteness, determinism."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wildrobot import specs
from wildrobot.envs import registry

NUM_STEPS = 300
# MJX envs take 40-50 s here (compiling reset and step dominates); pure-JAX ones about 1 s.
ENV_PARAMS = [
    pytest.param(name, marks=pytest.mark.slow) if name.startswith("WildRobot") else name
    for name in registry.registered_envs()
]


@functools.cache
def _rollout_fn(name: str):
    env = registry.make(name)

    @jax.jit
    def rollout(rng: jax.Array):
        key_reset, key_actions = jax.random.split(rng)
        state = env.reset(key_reset)
        actions = jax.random.uniform(
            key_actions, (NUM_STEPS, env.action_size), minval=-1.0, maxval=1.0
        )

        def body(state, action):
            state = env.step(state, action)
            return state, (state.obs, state.reward, state.done, state.metrics)

        final, trajectory = jax.lax.scan(body, state, actions)
        return state, final, trajectory

    return env, rollout


def test_registry_names_match_specs() -> None:
    assert set(registry.registered_envs()) == set(specs.TASKS)
    with pytest.raises(KeyError):
        registry.make("NoSuchEnv")


@pytest.mark.parametrize("name", ENV_PARAMS)
def test_reset_and_step_contract(name: str) -> None:
    env, rollout = _rollout_fn(name)
    first, final, (obs, reward, done, metrics) = rollout(jax.random.PRNGKey(0))

    assert first.obs.shape == (env.observation_size,)
    assert obs.shape == (NUM_STEPS, env.observation_size)
    assert reward.shape == (NUM_STEPS,) and done.shape == (NUM_STEPS,)
    assert env.backend in {"jax", "mjx"}
    for leaf in jax.tree_util.tree_leaves((first.obs, obs, reward, done, metrics)):
        assert bool(jnp.all(jnp.isfinite(leaf))), name
    assert set(metrics) == set(first.metrics)

    # Same key, same trajectory; another key, another one.
    _, final_again, (obs_again, _, _, _) = rollout(jax.random.PRNGKey(0))
    np.testing.assert_array_equal(np.asarray(obs), np.asarray(obs_again))
    _, _, (obs_other, _, _, _) = rollout(jax.random.PRNGKey(1))
    assert not np.array_equal(np.asarray(obs), np.asarray(obs_other))
