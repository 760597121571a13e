"""The compiled TTA rollout on the real WildRobot env: adapters at zero rate and best_of_n with
N = 1 are `none` exactly, episode for episode, under a shift (a fresh LayerNorm policy: the
mechanics need no training). Compiles a few rollouts: ~1 minute on a 2-core CPU.
(sysid_best_of_n's planning under the estimate is tested in test_privilege.py, on its compile.)"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from wildrobot.envs import registry
from wildrobot.workers.tta import shifts
from wildrobot.workers.tta.adapters import make_adapter
from wildrobot.workers.tta.evaluate import _fresh
from wildrobot.workers.tta.rollout import make_rollout

pytestmark = pytest.mark.slow

EPISODES, STEPS = 4, 40


@pytest.fixture(scope="module")
def env():
    return registry.make("WildRobotStand")


def _values(env, source, name, samples=1, horizon=0, **settings):
    adapter = make_adapter(name, source, env=env, **settings)
    run = make_rollout(env, source, adapter, EPISODES, STEPS, samples=samples, horizon=horizon)
    params = shifts.shift_params(
        "imu", env.config, 5, jax.random.split(jax.random.PRNGKey(1), EPISODES)
    )
    values, _ = run(source.params, params, _fresh(adapter, source, EPISODES), jax.random.PRNGKey(2))
    return {k: np.asarray(v) for k, v in values.items()}


def test_zero_rate_and_single_sample_are_none_exactly(env, ln_source):
    none = _values(env, ln_source, "none")
    assert none["steps_alive"].min() > 0
    for other in (
        _values(env, ln_source, "obs_norm", learning_rate=0.0),
        _values(env, ln_source, "tent", learning_rate=0.0),
        _values(env, ln_source, "none", samples=1, horizon=3),
    ):
        for key, value in none.items():
            np.testing.assert_array_equal(other[key], value, err_msg=key)
    # With a rate the episodes differ: the comparison above can fail.
    moved = _values(env, ln_source, "obs_norm", learning_rate=0.2)
    assert not np.array_equal(moved["return"], none["return"])


def test_maml_adapts_on_its_own_episodes_and_at_rate_zero_is_none(env, ln_source):
    """maml runs its own adaptation episodes in each slot's shifted env, takes its inner steps
    on them and then acts deterministically: at rate 0 (the rate is adapter state, so one
    compile serves both runs) the evaluated episodes are `none`'s (the same falls and lengths;
    returns to float rounding, since per-episode weights make the policy's matmul a batched one:
    measured 6e-6 relative), the inner steps still counted; at rate 0.05 the parameters move,
    within the trust region, and so do the episodes. (Whether it helps: docs/maml.md.)"""
    import jax.numpy as jnp

    from wildrobot.workers.tta.meta import MamlAdaptation

    none = _values(env, ln_source, "none")
    maml = make_adapter("maml", ln_source, env=env, adapt_steps=2, adapt_episodes=2)
    assert isinstance(maml, MamlAdaptation)
    run = make_rollout(env, ln_source, maml, EPISODES, STEPS)
    params = shifts.shift_params(
        "imu", env.config, 5, jax.random.split(jax.random.PRNGKey(1), EPISODES)
    )
    fresh = _fresh(maml, ln_source, EPISODES)
    key = jax.random.PRNGKey(2)
    still, _ = run(ln_source.params, params, fresh.replace(rate=jnp.zeros(EPISODES)), key)
    for name, value in none.items():
        if name in ("fell", "steps_alive"):
            np.testing.assert_array_equal(np.asarray(still[name]), value, err_msg=name)
        else:
            np.testing.assert_allclose(still[name], value, rtol=1e-4, atol=1e-5, err_msg=name)
    np.testing.assert_array_equal(np.asarray(still["count/inner_steps"]), 2)
    assert np.all(np.asarray(still["diag/inner_grad_norm"]) > 0)

    moved, end = run(ln_source.params, params, fresh, key)
    np.testing.assert_array_equal(np.asarray(moved["count/inner_steps"]), 2)
    np.testing.assert_array_equal(np.asarray(moved["count/skipped_inner_steps"]), 0)
    shift = jax.tree.map(lambda a, p: jnp.max(jnp.abs(a - p)), end.policy, ln_source.params.policy)
    largest = max(float(x) for x in jax.tree.leaves(shift))
    assert 0 < largest <= 2 * maml.guards.max_step + 1e-6  # two inner steps, each bounded
    assert not np.allclose(np.asarray(moved["return"]), none["return"], rtol=1e-3)
