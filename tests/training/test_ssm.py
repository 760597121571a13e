"""The SSM layer: the parallel resettable scan equals stepping one control step at a time."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wildrobot.workers.training.ssm import (
    R_MAX,
    R_MIN,
    SsmPolicy,
    resettable_scan,
    sequential_scan,
)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_resettable_scan_equals_sequential_with_random_resets(seed: int) -> None:
    keys = jax.random.split(jax.random.PRNGKey(seed), 4)
    t, b, p = 37, 5, 8
    a = jax.random.uniform(keys[0], (p,), minval=0.5, maxval=0.999)
    u = jax.random.normal(keys[1], (t, b, p))
    resets = jax.random.bernoulli(keys[2], 0.15, (t, b))
    x0 = jax.random.normal(keys[3], (b, p))
    parallel = resettable_scan(a, u, resets, x0)
    sequential = sequential_scan(a, u, resets, x0)
    np.testing.assert_allclose(parallel, sequential, rtol=1e-5, atol=1e-5)
    # The resets mattered: without them the result differs.
    unreset = resettable_scan(a, u, jnp.zeros_like(resets), x0)
    assert np.abs(np.asarray(unreset) - np.asarray(parallel)).max() > 1e-2


def test_reset_zeroes_the_state_carried_in() -> None:
    a = jnp.full((3,), 0.9)
    u = jnp.zeros((4, 1, 3))
    x0 = jnp.ones((1, 3))
    resets = jnp.array([[0], [0], [1], [0]])
    x = np.asarray(resettable_scan(a, u, resets, x0))[:, 0, 0]
    np.testing.assert_allclose(x, [0.9, 0.81, 0.0, 0.0], atol=1e-7)


def test_policy_segment_equals_steps_with_resets() -> None:
    """SsmPolicy over a segment (scan) == its step form, zeroing the state after each done."""
    module = SsmPolicy(output_size=6, width=16, state_size=8, layers=2)
    keys = jax.random.split(jax.random.PRNGKey(3), 4)
    t, b, o = 29, 4, 7
    obs = jax.random.normal(keys[0], (t, b, o))
    resets = jax.random.bernoulli(keys[1], 0.2, (t, b))
    h0 = jax.random.normal(keys[2], (b, 2, 8))
    params = module.init(keys[3], obs, h0, resets)
    out, final = module.apply(params, obs, h0, resets)

    state, steps = h0, []
    for i in range(t):
        state = jnp.where(resets[i][:, None, None], 0.0, state)
        y, state = module.apply(params, obs[i], state, method=SsmPolicy.step)
        steps.append(y)
    np.testing.assert_allclose(out, jnp.stack(steps), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(final, state, rtol=1e-5, atol=1e-5)


def test_decay_starts_in_the_stable_range() -> None:
    module = SsmPolicy(output_size=2, width=8, state_size=64, layers=1)
    params = module.init(jax.random.PRNGKey(0), jnp.zeros((1, 1, 3)), jnp.zeros((1, 1, 64)),
                         jnp.zeros((1, 1)))  # fmt: skip
    a = np.exp(-np.exp(np.asarray(params["params"]["ssm_0"]["nu"])))
    assert (a >= R_MIN - 1e-6).all() and (a <= R_MAX + 1e-6).all()
