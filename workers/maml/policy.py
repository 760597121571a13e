"""The policy interface MAML adapts: what an architecture (`mlp` now, `ssm` later) provides.

MAML needs, of a policy: fresh parameters, a control step (with a recurrent carry, empty for an
MLP), the distribution parameters over a whole rollout [T, B] (every episode starting at t = 0,
as MAML's rollouts do: an SSM scans from its zero state), and the value function. The action
distribution is Brax's tanh-normal; the inner loop adapts only `params.policy`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
from brax.training.agents.ppo import losses as ppo_losses
from brax.training.agents.ppo import networks as ppo_networks

from ..training import networks as net

POLICY_ARCHS = ("mlp",)


@dataclasses.dataclass(frozen=True)
class PolicyModel:
    """An architecture behind one small interface (see the module docstring).

    A recurrent architecture overrides `initial_carry`, `step` and `sequence_logits`; the rest
    (distribution, value, init) is shared.
    """

    config: net.NetworkConfig
    networks: ppo_networks.PPONetworks

    @property
    def distribution(self):
        return self.networks.parametric_action_distribution

    def init(self, key: jax.Array) -> ppo_losses.PPONetworkParams:
        return net.init_params(self.networks, key)

    def init_normalizer(self):
        return net.init_normalizer(self.config)

    def initial_carry(self, batch: int) -> Any:
        del batch
        return ()

    def step(self, policy_params, normalizer, carry, obs: jax.Array):
        """(carry, obs [B, ...]) -> (carry, distribution parameters [B, P])."""
        return carry, self.networks.policy_network.apply(normalizer, policy_params, obs)

    def sequence_logits(self, policy_params, normalizer, obs: jax.Array) -> jax.Array:
        """obs [T, B, ...] (episodes start at t = 0) -> distribution parameters [T, B, P]."""
        return self.networks.policy_network.apply(normalizer, policy_params, obs)

    def value(self, value_params, normalizer, obs: jax.Array) -> jax.Array:
        return self.networks.value_network.apply(normalizer, value_params, obs)


def make_policy_model(
    arch: str,
    observation_size: int,
    action_size: int,
    policy_hidden_sizes: tuple[int, ...],
    value_hidden_sizes: tuple[int, ...],
    normalize_observations: bool,
) -> PolicyModel:
    if arch not in POLICY_ARCHS:
        raise ValueError(f"policy_arch: {arch!r} is not one of {', '.join(POLICY_ARCHS)}")
    config = net.NetworkConfig(
        observation_size=int(observation_size),
        action_size=int(action_size),
        policy_hidden_sizes=tuple(policy_hidden_sizes),
        value_hidden_sizes=tuple(value_hidden_sizes),
        normalize_observations=normalize_observations,
    )
    return PolicyModel(config=config, networks=net.make_networks(config))
