"""GAE on hand-worked numbers, and the trainer's loss against Brax's own PPO loss."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from brax.training import types as brax_types
from brax.training.agents.ppo import losses as ppo_losses

from tests.training.common import point_mass_spec
from wildrobot.workers.training import networks as net
from wildrobot.workers.training.loss import compute_gae, make_loss_fn


def test_gae_hand_worked():
    # One env, T = 3, discount 0.5, lambda 0.5, no termination or truncation.
    # rewards r = [1, 2, 3], values V = [1, 1, 1], bootstrap V_3 = 2.
    # deltas d_t = r_t + 0.5 V_{t+1} - V_t:
    #   d_0 = 1 + 0.5*1 - 1 = 0.5;  d_1 = 2 + 0.5*1 - 1 = 1.5;  d_2 = 3 + 0.5*2 - 1 = 3.0
    # A_t = d_t + (0.5*0.5) A_{t+1}:
    #   A_2 = 3.0;  A_1 = 1.5 + 0.25*3.0 = 2.25;  A_0 = 0.5 + 0.25*2.25 = 1.0625
    # vs_t = A_t + V_t = [2.0625, 3.25, 4.0]; Brax's advantages are then one-step targets on vs:
    #   adv_t = r_t + 0.5 vs_{t+1} - V_t:
    #   adv_0 = 1 + 0.5*3.25 - 1 = 1.625;  adv_1 = 2 + 0.5*4.0 - 1 = 3.0;  adv_2 = 3 + 0.5*2 - 1 = 3.0
    zeros = jnp.zeros((3, 1))
    vs, advantages = compute_gae(
        truncation=zeros,
        termination=zeros,
        rewards=jnp.array([[1.0], [2.0], [3.0]]),
        values=jnp.ones((3, 1)),
        bootstrap_value=jnp.array([2.0]),
        lambda_=0.5,
        discount=0.5,
    )
    np.testing.assert_allclose(vs[:, 0], [2.0625, 3.25, 4.0], rtol=1e-6)
    np.testing.assert_allclose(advantages[:, 0], [1.625, 3.0, 3.0], rtol=1e-6)


def test_gae_termination_and_truncation():
    # Termination at t = 1 cuts the bootstrap: d_1 = r_1 - V_1 = 2 - 1 = 1, A_1 = 1 (nothing after
    # it flows back), A_0 = d_0 + 0.25*A_1 = 0.5 + 0.25 = 0.75 (d_0 as above).
    # Truncation at t = 2 zeroes that step's delta and advantage: A_2 = 0.
    vs, advantages = compute_gae(
        truncation=jnp.array([[0.0], [0.0], [1.0]]),
        termination=jnp.array([[0.0], [1.0], [0.0]]),
        rewards=jnp.array([[1.0], [2.0], [3.0]]),
        values=jnp.ones((3, 1)),
        bootstrap_value=jnp.array([2.0]),
        lambda_=0.5,
        discount=0.5,
    )
    np.testing.assert_allclose(vs[:, 0], [1.75, 2.0, 1.0], rtol=1e-6)
    # adv_0 = 1 + 0.5*vs_1 - 1 = 1.0; adv_1 = 2 - 1 = 1.0 (terminated); adv_2 = 0 (truncated)
    np.testing.assert_allclose(advantages[:, 0], [1.0, 1.0, 0.0], rtol=1e-6)


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


def test_loss_matches_brax_compute_ppo_loss():
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

    ours, our_metrics = make_loss_fn(spec, networks)(params, normalizer, data, key_loss)
    theirs, their_metrics = ppo_losses.compute_ppo_loss(
        params,
        normalizer,
        data,
        key_loss,
        ppo_network=networks,
        entropy_cost=0.01,
        discounting=0.97,
        reward_scaling=2.0,
        gae_lambda=0.9,
        clipping_epsilon=0.25,
        normalize_advantage=True,
        vf_coefficient=0.5,
    )
    np.testing.assert_array_equal(ours, theirs)
    for name in ("policy_loss", "v_loss", "entropy_loss", "kl_mean"):
        np.testing.assert_array_equal(our_metrics[name], their_metrics[name])
    # The spec's coefficients reach the loss: another entropy cost gives another loss.
    other = make_loss_fn(spec.model_copy(update={"entropy_cost": 0.5}), networks)
    assert not np.allclose(other(params, normalizer, data, key_loss)[0], ours)
