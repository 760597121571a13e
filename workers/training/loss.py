"""The PPO loss: Brax's clipped-surrogate loss with its GAE, bound to a spec's coefficients."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
from brax.training import types as brax_types
from brax.training.agents.ppo import losses as ppo_losses
from brax.training.agents.ppo import networks as ppo_networks

from wildrobot.specs import PpoSpec

# Brax's GAE: (truncation, termination, rewards, values [T, B], bootstrap_value [B]) -> (vs, adv).
compute_gae = ppo_losses.compute_gae

LossFn = Callable[
    [ppo_losses.PPONetworkParams, Any, brax_types.Transition, jax.Array],
    tuple[jax.Array, dict[str, jax.Array]],
]


def make_loss_fn(spec: PpoSpec, networks: ppo_networks.PPONetworks) -> LossFn:
    """loss_fn(params, normalizer, data [B, T, ...], rng) -> (total loss, metrics).

    Advantages are normalized per minibatch and the value loss is 0.5 * vf_coefficient * MSE
    with vf_coefficient 0.5 (Brax defaults), so losses compare one to one with Brax's PPO.
    """
    return functools.partial(
        ppo_losses.compute_ppo_loss,
        ppo_network=networks,
        entropy_cost=spec.entropy_cost,
        discounting=spec.discounting,
        reward_scaling=spec.reward_scaling,
        gae_lambda=spec.gae_lambda,
        clipping_epsilon=spec.clipping_epsilon,
        normalize_advantage=True,
        vf_coefficient=0.5,
    )
