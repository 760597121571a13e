"""Recurrent PPO for SSM policies: acting with a carried state, and the loss over segments.

Acting: each env's policy state rides in the rollout carry beside the env state; it is zeroed
wherever the env step ended an episode (Brax's auto-reset puts the next episode's first
observation in the same state), so no state crosses an episode boundary. Every segment of
unroll_length steps records the state it started from (`POLICY_STATE_KEY` in the transition
extras), so the loss recomputes the segment exactly as it was acted: the resettable scan from that
state, with a reset at every step that follows a `done` inside the segment (truncated BPTT at
unroll_length). Minibatches are whole segments (one env's unroll_length steps), never cut in time.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from brax.envs.base import Env
from brax.training import types as brax_types
from brax.training.agents.ppo import losses as ppo_losses
from brax.training.agents.ppo import networks as ppo_networks

from wildrobot.specs import PpoSpec

from .networks import SsmPolicyNetwork

POLICY_STATE_KEY = "policy_state"


def unroll(
    env: Env,
    env_state: Any,
    policy_state: jax.Array,
    networks: ppo_networks.PPONetworks,
    params: tuple[Any, Any],
    key: jax.Array,
    unroll_length: int,
    extra_fields: tuple[str, ...],
) -> tuple[Any, jax.Array, brax_types.Transition]:
    """unroll_length stochastic steps: (env_state, policy_state, data [T, B, ...]).

    params: (normalizer, policy params). data.extras[POLICY_STATE_KEY] is the segment's initial
    policy state [B, L, P] (no time axis).
    """
    policy: SsmPolicyNetwork = networks.policy_network
    dist = networks.parametric_action_distribution
    normalizer, policy_params = params

    def step(carry, key_sample):
        env_state, state = carry
        logits, state = policy.step(normalizer, policy_params, env_state.obs, state)
        raw_action = dist.sample_no_postprocessing(logits, key_sample)
        log_prob = dist.log_prob(logits, raw_action)
        next_state = env.step(env_state, dist.postprocess(raw_action))
        state = jnp.where(next_state.done[:, None, None] > 0, 0.0, state)
        transition = brax_types.Transition(
            observation=env_state.obs,
            action=dist.postprocess(raw_action),
            reward=next_state.reward,
            discount=1 - next_state.done,
            next_observation=next_state.obs,
            extras={
                "policy_extras": {
                    "log_prob": log_prob,
                    "raw_action": raw_action,
                    "distribution_params": logits,
                },
                "state_extras": {name: next_state.info[name] for name in extra_fields},
            },
        )
        return (next_state, state), transition

    (env_state, final_state), data = jax.lax.scan(
        step, (env_state, policy_state), jax.random.split(key, unroll_length)
    )
    data = data._replace(extras={**data.extras, POLICY_STATE_KEY: policy_state})
    return env_state, final_state, data


def segment_resets(discount: jax.Array) -> jax.Array:
    """[T, B] discounts (0 where a step ended an episode) -> [T, B] resets: 1 at every step
    that starts a new episode inside the segment (the segment's first step never: its recorded
    initial state is already zero after a boundary)."""
    done = 1.0 - discount
    return jnp.concatenate([jnp.zeros_like(done[:1]), done[:-1]], axis=0)


def make_loss_fn(spec: PpoSpec, networks: ppo_networks.PPONetworks):
    """loss_fn(params, normalizer, data [B, T, ...], rng) -> (total loss, metrics).

    Brax's PPO loss (clipped surrogate, GAE, entropy bonus, value MSE; advantages normalized per
    minibatch, vf_coefficient 0.5) with the policy's distribution recomputed over each segment by
    the resettable scan from the segment's recorded initial state.
    """
    policy: SsmPolicyNetwork = networks.policy_network
    dist = networks.parametric_action_distribution
    value_apply = networks.value_network.apply

    def loss_fn(params: ppo_losses.PPONetworkParams, normalizer, data, rng):
        initial_state = data.extras[POLICY_STATE_KEY]  # [B, L, P]
        data = data._replace(extras={k: v for k, v in data.extras.items() if k != POLICY_STATE_KEY})
        data = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), data)  # [T, B, ...]
        logits, _ = policy.apply(
            normalizer, params.policy, data.observation, initial_state,
            segment_resets(data.discount),
        )  # fmt: skip
        baseline = value_apply(normalizer, params.value, data.observation)
        terminal_obs = jax.tree.map(lambda x: x[-1], data.next_observation)
        bootstrap_value = value_apply(normalizer, params.value, terminal_obs)

        truncation = data.extras["state_extras"]["truncation"]
        termination = (1 - data.discount) * (1 - truncation)
        vs, advantages = ppo_losses.compute_gae(
            truncation=truncation,
            termination=termination,
            rewards=data.reward * spec.reward_scaling,
            values=baseline,
            bootstrap_value=bootstrap_value,
            lambda_=spec.gae_lambda,
            discount=spec.discounting,
        )
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        log_prob = dist.log_prob(logits, data.extras["policy_extras"]["raw_action"])
        rho = jnp.exp(log_prob - data.extras["policy_extras"]["log_prob"])
        clipped = jnp.clip(rho, 1 - spec.clipping_epsilon, 1 + spec.clipping_epsilon)
        policy_loss = -jnp.mean(jnp.minimum(rho * advantages, clipped * advantages))
        v_loss = jnp.mean((vs - baseline) ** 2) * 0.5 * 0.5
        entropy = jnp.mean(dist.entropy(logits, rng))
        entropy_loss = -spec.entropy_cost * entropy
        total = policy_loss + v_loss + entropy_loss

        new_dist = dist.create_dist(logits)
        old_dist = dist.create_dist(data.extras["policy_extras"]["distribution_params"])
        return total, {
            "total_loss": total,
            "policy_loss": policy_loss,
            "v_loss": v_loss,
            "entropy_loss": entropy_loss,
            "kl_mean": jnp.mean(new_dist.kl_divergence(old_dist)),
            "policy_dist_mean_std": jnp.mean(new_dist.scale),
        }

    return loss_fn
