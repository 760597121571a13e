"""Adapter mechanics: zero rate is `none` bitwise, reset restores the source, guards hold."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wildrobot.envs.wildrobot.base import OBS_SIZE
from wildrobot.workers.tta.adapters import Guards, layer_norm_params, make_adapter


def _observations(steps: int = 40, seed: int = 3) -> jax.Array:
    # A drifting stream, as a shifted robot's IMU and joints give.
    key = jax.random.PRNGKey(seed)
    drift = jnp.linspace(0.0, 2.0, steps)[:, None] * jax.random.normal(key, (1, OBS_SIZE))
    return drift + 0.3 * jax.random.normal(jax.random.PRNGKey(seed + 1), (steps, OBS_SIZE))


def _run(adapter, source, observations):
    """(final state, actions) of one episode; the source params are an argument, as in the rollout."""

    def episode(params, obs):
        def step(state, o):
            action, state = adapter.act(params, state, o, jax.random.PRNGKey(0))
            return state, action

        return jax.lax.scan(step, adapter.init(params), obs)

    return jax.jit(episode)(source.params, observations)


@pytest.mark.parametrize("name", ["obs_norm", "tent"])
def test_zero_rate_reproduces_none_bitwise(name, ln_source):
    obs = _observations()
    _, reference = _run(make_adapter("none", ln_source), ln_source, obs)
    _, adapted = _run(make_adapter(name, ln_source, learning_rate=0.0), ln_source, obs)
    np.testing.assert_array_equal(np.asarray(adapted), np.asarray(reference))
    # And with a rate, they do adapt: the actions move.
    _, moved = _run(make_adapter(name, ln_source, learning_rate=0.05), ln_source, obs)
    assert float(jnp.max(jnp.abs(moved - reference))) > 1e-4


def test_tent_reset_restores_the_source_exactly(ln_source):
    tent = make_adapter("tent", ln_source, learning_rate=0.05)
    state, _ = _run(tent, ln_source, _observations())
    source_norms = layer_norm_params(ln_source.params.policy)
    changed = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), state.norms, source_norms)
    assert max(jax.tree.leaves(changed)) > 1e-3
    back = tent.reset(ln_source.params, state)
    for a, b in zip(jax.tree.leaves(back.norms), jax.tree.leaves(source_norms), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(back.resets) == int(state.resets) + 1


def test_tent_step_bound_and_trust_region_hold(ln_source):
    guards = Guards(max_step=0.002, trust_radius=0.01, spike_factor=1e9)
    tent = make_adapter("tent", ln_source, learning_rate=10.0, guards=guards)  # a huge rate
    obs = _observations(60)
    state = tent.init(ln_source.params)
    step = jax.jit(lambda s, o: tent.act(ln_source.params, s, o, jax.random.PRNGKey(0))[1])
    source = layer_norm_params(ln_source.params.policy)
    for t in range(obs.shape[0]):
        new = step(state, obs[t])
        moved = jax.tree.map(lambda a, b: jnp.max(jnp.abs(a - b)), new.norms, state.norms)
        assert max(float(m) for m in jax.tree.leaves(moved)) <= guards.max_step + 1e-7
        state = new
    # Bounded around the EMA anchor, which itself moves slowly: close to the source after 60 steps.
    far = jax.tree.map(lambda a, b: jnp.max(jnp.abs(a - b)), state.norms, state.anchor)
    assert max(float(m) for m in jax.tree.leaves(far)) <= guards.trust_radius + 1e-7
    total = jax.tree.map(lambda a, b: jnp.max(jnp.abs(a - b)), state.norms, source)
    assert 0.0 < max(float(m) for m in jax.tree.leaves(total)) <= 60 * guards.max_step + 1e-6


def _kl(adapter, source, state, obs):
    from wildrobot.workers.tta.adapters import _gaussian, gaussian_kl, with_layer_norms

    dist = source.networks.parametric_action_distribution
    apply = source.networks.policy_network.apply
    p = source.params
    mean, scale = _gaussian(dist, apply(p.normalizer, with_layer_norms(p.policy, state.norms), obs))
    mean0, scale0 = _gaussian(dist, apply(p.normalizer, p.policy, obs))
    return float(gaussian_kl(mean, scale, mean0, scale0))


def test_kl_anchor_keeps_tent_near_the_source(ln_source):
    obs = _observations(60)
    guards = Guards(max_step=0.05, trust_radius=1.0, spike_factor=1e9)
    free = make_adapter("tent", ln_source, learning_rate=0.05, kl_weight=0.0, guards=guards)
    anchored = make_adapter("tent", ln_source, learning_rate=0.05, kl_weight=50.0, guards=guards)
    kl_free = _kl(free, ln_source, _run(free, ln_source, obs)[0], obs[-1])
    kl_anchored = _kl(anchored, ln_source, _run(anchored, ln_source, obs)[0], obs[-1])
    assert kl_anchored < 0.5 * kl_free, (kl_anchored, kl_free)


def test_tent_entropy_goes_down(ln_source):
    from wildrobot.workers.tta.adapters import _gaussian, with_layer_norms

    obs = _observations(60)
    tent = make_adapter(
        "tent",
        ln_source,
        learning_rate=0.05,
        kl_weight=0.0,
        guards=Guards(max_step=0.05, trust_radius=1.0, spike_factor=1e9),
    )
    state, _ = _run(tent, ln_source, obs)
    dist = ln_source.networks.parametric_action_distribution
    apply = ln_source.networks.policy_network.apply
    _, scale = _gaussian(
        dist,
        apply(
            ln_source.params.normalizer,
            with_layer_norms(ln_source.params.policy, state.norms),
            obs[-1],
        ),
    )
    _, scale0 = _gaussian(
        dist, apply(ln_source.params.normalizer, ln_source.params.policy, obs[-1])
    )
    assert float(jnp.sum(jnp.log(scale))) < float(jnp.sum(jnp.log(scale0))) - 0.1


def test_obs_norm_guards_bound_the_statistics(plain_source):
    adapter = make_adapter("obs_norm", plain_source, learning_rate=0.5)
    obs = jnp.full((80, OBS_SIZE), 50.0)  # constant and far away: the worst case
    state, actions = _run(adapter, plain_source, obs)
    mean0, std0 = plain_source.params.normalizer.mean, plain_source.params.normalizer.std
    assert bool(jnp.all(jnp.abs(state.mean - mean0) <= 3.0 * std0 + 1e-5))
    assert bool(jnp.all(jnp.isfinite(actions)))


def test_registry_rejects_unknown_names_and_tent_needs_layer_norm(plain_source):
    with pytest.raises(
        ValueError, match="unknown adapter 'bn'; known: maml, none, obs_norm, sysid, tent"
    ):
        make_adapter("bn", plain_source)
    with pytest.raises(ValueError, match="policy_layer_norm=true"):
        make_adapter("tent", plain_source)


def test_tent_spike_criterion_survives_a_loss_that_crosses_zero():
    """Running mean -0.01 and mean absolute deviation 0.05: a loss of 0.1 is ordinary (the old
    |loss| > 5 |mean| rule fired on it), 0.3 is a spike (0.31 > 5 x 0.05); nothing fires in the
    warm-up; a non-finite loss always does."""
    from wildrobot.workers.tta.adapters import SPIKE_WARMUP, loss_spike

    def spike(loss, seen=20):
        return bool(loss_spike(jnp.float32(loss), -0.01, 0.05, seen, 5.0))

    assert not spike(0.1) and not spike(-0.2) and spike(0.3)
    assert not spike(0.3, seen=SPIKE_WARMUP - 1)
    assert spike(float("nan"), seen=0)
