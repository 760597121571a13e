"""The trainer's PPO loss against an independent numpy reference (GAE, clipped surrogate, value
loss), the reference itself checked on hand-worked numbers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from brax.training import types as brax_types

from tests.training.tiny_runs import point_mass_spec
from wildrobot.workers.training import networks as net
from wildrobot.workers.training.loss import make_loss_fn


def reference_gae(truncation, termination, rewards, values, bootstrap_value, lambda_, discount):
    """GAE written out in numpy, step by step, independently of Brax ([T, B] arrays).

    Returns (vs, advantages) with Brax's conventions: vs_t = A_t + V_t, where
    A_t = d_t + discount * lambda * (1 - term_t) * (1 - trunc_t) * A_{t+1} and
    d_t = (r_t + discount * (1 - term_t) * V_{t+1} - V_t) * (1 - trunc_t); the policy's
    advantage is the one-step target on vs: (r_t + discount * (1 - term_t) * vs_{t+1} - V_t)
    * (1 - trunc_t), with V_T = vs_T = bootstrap_value.
    """
    steps = rewards.shape[0]
    next_values = np.concatenate([values[1:], bootstrap_value[None]], axis=0)
    gae = np.zeros_like(bootstrap_value, dtype=np.float64)
    vs = np.zeros_like(values, dtype=np.float64)
    for t in reversed(range(steps)):
        keep = 1.0 - truncation[t]
        delta = (rewards[t] + discount * (1.0 - termination[t]) * next_values[t] - values[t]) * keep
        gae = delta + discount * (1.0 - termination[t]) * keep * lambda_ * gae
        vs[t] = gae + values[t]
    next_vs = np.concatenate([vs[1:], bootstrap_value[None]], axis=0)
    advantages = (rewards + discount * (1.0 - termination) * next_vs - values) * (1.0 - truncation)
    return vs, advantages


def test_gae_hand_worked():
    # One env, T = 3, discount 0.5, lambda 0.5, no termination or truncation.
    # rewards r = [1, 2, 3], values V = [1, 1, 1], bootstrap V_3 = 2.
    # deltas d_t = r_t + 0.5 V_{t+1} - V_t:
    #   d_0 = 1 + 0.5*1 - 1 = 0.5;  d_1 = 2 + 0.5*1 - 1 = 1.5;  d_2 = 3 + 0.5*2 - 1 = 3.0
    # A_t = d_t + (0.5*0.5) A_{t+1}:
    #   A_2 = 3.0;  A_1 = 1.5 + 0.25*3.0 = 2.25;  A_0 = 0.5 + 0.25*2.25 = 1.0625
    # vs_t = A_t + V_t = [2.0625, 3.25, 4.0]; the advantages are then one-step targets on vs:
    #   adv_t = r_t + 0.5 vs_{t+1} - V_t:
    #   adv_0 = 1 + 0.5*3.25 - 1 = 1.625;  adv_1 = 2 + 0.5*4.0 - 1 = 3.0;  adv_2 = 3 + 0.5*2 - 1 = 3.0
    zeros = np.zeros((3, 1))
    vs, advantages = reference_gae(
        zeros, zeros, np.array([[1.0], [2.0], [3.0]]), np.ones((3, 1)), np.array([2.0]), 0.5, 0.5
    )
    np.testing.assert_allclose(vs[:, 0], [2.0625, 3.25, 4.0], rtol=1e-12)
    np.testing.assert_allclose(advantages[:, 0], [1.625, 3.0, 3.0], rtol=1e-12)


def test_gae_termination_and_truncation():
    # Termination at t = 1 cuts the bootstrap: d_1 = r_1 - V_1 = 2 - 1 = 1, A_1 = 1 (nothing after
    # it flows back), A_0 = d_0 + 0.25*A_1 = 0.5 + 0.25 = 0.75 (d_0 as above).
    # Truncation at t = 2 zeroes that step's delta and advantage: A_2 = 0.
    vs, advantages = reference_gae(
        np.array([[0.0], [0.0], [1.0]]),
        np.array([[0.0], [1.0], [0.0]]),
        np.array([[1.0], [2.0], [3.0]]),
        np.ones((3, 1)),
        np.array([2.0]),
        0.5,
        0.5,
    )
    np.testing.assert_allclose(vs[:, 0], [1.75, 2.0, 1.0], rtol=1e-12)
    # adv_0 = 1 + 0.5*vs_1 - 1 = 1.0; adv_1 = 2 - 1 = 1.0 (terminated); adv_2 = 0 (truncated)
    np.testing.assert_allclose(advantages[:, 0], [1.0, 1.0, 0.0], rtol=1e-12)


def reference_ppo_loss(target_log_probs, behaviour_log_probs, baseline, bootstrap, data, spec):
    """The clipped-surrogate PPO loss in numpy from the networks' outputs ([T, B] arrays):
    policy loss -mean(min(rho A, clip(rho, 1 - eps, 1 + eps) A)) with A normalized over the
    batch, value loss 0.25 * mean((vs - V)^2) (0.5 * vf_coefficient 0.5)."""
    truncation = np.asarray(data["truncation"], np.float64)
    termination = (1.0 - np.asarray(data["discount"], np.float64)) * (1.0 - truncation)
    rewards = np.asarray(data["reward"], np.float64) * spec.reward_scaling
    vs, advantages = reference_gae(
        truncation, termination, rewards, baseline, bootstrap, spec.gae_lambda, spec.discounting
    )
    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    rho = np.exp(target_log_probs - behaviour_log_probs)
    eps = spec.clipping_epsilon
    clipped = np.clip(rho, 1.0 - eps, 1.0 + eps)
    policy_loss = -np.mean(np.minimum(rho * advantages, clipped * advantages))
    v_loss = 0.25 * np.mean((vs - baseline) ** 2)
    return policy_loss, v_loss


def _random_batch(config: net.NetworkConfig, networks, key: jax.Array, batch: int, steps: int):
    keys = jax.random.split(key, 6)
    obs = jax.random.normal(keys[0], (batch, steps, config.observation_size))
    next_obs = jax.random.normal(keys[1], (batch, steps, config.observation_size))
    logits = jax.random.normal(keys[2], (batch, steps, 2 * config.action_size))
    dist = networks.parametric_action_distribution
    raw_action = dist.sample_no_postprocessing(logits, keys[3])
    done = (jax.random.uniform(keys[4], (batch, steps)) < 0.1).astype(jnp.float32)
    truncation = done * (jax.random.uniform(keys[5], (batch, steps)) < 0.5)
    return brax_types.Transition(
        observation=obs,
        action=dist.postprocess(raw_action),
        reward=jax.random.normal(keys[0], (batch, steps)),
        discount=1.0 - done,
        next_observation=next_obs,
        extras={
            "policy_extras": {
                "raw_action": raw_action,
                "log_prob": dist.log_prob(logits, raw_action),
                "distribution_params": logits,
            },
            "state_extras": {"truncation": truncation},
        },
    )


def test_loss_matches_an_independent_reference():
    spec = point_mass_spec(
        1,
        entropy_cost=0.01,
        discounting=0.97,
        gae_lambda=0.9,
        clipping_epsilon=0.25,
        reward_scaling=2.0,
    )
    config = net.NetworkConfig(
        observation_size=6, action_size=2, policy_hidden_sizes=(16,), value_hidden_sizes=(16,)
    )
    networks = net.make_networks(config)
    key_params, key_data, key_loss = jax.random.split(jax.random.PRNGKey(3), 3)
    params = net.init_params(networks, key_params)
    normalizer = net.init_normalizer(config)
    data = _random_batch(config, networks, key_data, batch=8, steps=5)

    ours, metrics = make_loss_fn(spec, networks)(params, normalizer, data, key_loss)

    # The networks' outputs (inputs to the loss, not the loss itself), time first: [T, B].
    def time_first(x):
        return np.swapaxes(np.asarray(x, np.float64), 0, 1)

    logits = networks.policy_network.apply(normalizer, params.policy, data.observation)
    dist = networks.parametric_action_distribution
    target = time_first(dist.log_prob(logits, data.extras["policy_extras"]["raw_action"]))
    behaviour = time_first(data.extras["policy_extras"]["log_prob"])
    baseline = time_first(networks.value_network.apply(normalizer, params.value, data.observation))
    bootstrap = np.asarray(
        networks.value_network.apply(normalizer, params.value, data.next_observation[:, -1]),
        np.float64,
    )
    columns = {
        "reward": time_first(data.reward),
        "discount": time_first(data.discount),
        "truncation": time_first(data.extras["state_extras"]["truncation"]),
    }
    policy_loss, v_loss = reference_ppo_loss(target, behaviour, baseline, bootstrap, columns, spec)
    # Some steps terminate and some truncate (the batch exercises both masks).
    assert 0 < columns["truncation"].sum() < (1 - columns["discount"]).sum()
    np.testing.assert_allclose(metrics["policy_loss"], policy_loss, rtol=2e-4, atol=1e-6)
    np.testing.assert_allclose(metrics["v_loss"], v_loss, rtol=2e-4, atol=1e-6)
    np.testing.assert_allclose(
        ours, policy_loss + v_loss + metrics["entropy_loss"], rtol=2e-4, atol=1e-6
    )
    # The spec's coefficients reach the loss: the entropy term scales with entropy_cost, and
    # another discount or clipping gives another loss.
    other = make_loss_fn(spec.model_copy(update={"entropy_cost": 0.5}), networks)
    np.testing.assert_allclose(
        other(params, normalizer, data, key_loss)[1]["entropy_loss"],
        50.0 * metrics["entropy_loss"],
        rtol=1e-5,
    )
    for update in ({"discounting": 0.5}, {"clipping_epsilon": 0.01}, {"reward_scaling": 1.0}):
        changed = make_loss_fn(spec.model_copy(update=update), networks)
        assert not np.allclose(changed(params, normalizer, data, key_loss)[0], ours), update
