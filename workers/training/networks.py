"""Network config: what a checkpoint records so the PPO networks can be rebuilt from JSON alone."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
from brax.training import networks as brax_networks
from brax.training import types as brax_types
from brax.training.acme import running_statistics, specs
from brax.training.agents.ppo import losses as ppo_losses
from brax.training.agents.ppo import networks as ppo_networks
from flax import linen

from wildrobot.specs import PpoSpec

from .ssm import SsmPolicy

ACTIVATIONS = {"elu": linen.elu, "swish": linen.swish, "relu": linen.relu, "tanh": linen.tanh}
PRIVILEGED_OBS_KEY = "privileged_state"


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """Everything needed to rebuild the PPO networks and the observation normalizer.

    observation_size is an int for flat observations or {key: shape} for dict observations;
    with a dict, the policy reads policy_obs_key and the critic value_obs_key (privileged).
    """

    observation_size: int | dict[str, list[int]]
    action_size: int
    policy_hidden_sizes: tuple[int, ...]
    value_hidden_sizes: tuple[int, ...]
    activation: str = "elu"
    normalize_observations: bool = True
    policy_obs_key: str = "state"
    value_obs_key: str = "state"
    policy_layer_norm: bool = False  # LayerNorm after each hidden layer of the policy
    # "ssm": the policy is an SsmPolicy (workers/training/ssm.py) with a recurrent state
    # [ssm_layers, ssm_state_size] per env; the value network stays the MLP above.
    policy_arch: str = "mlp"
    ssm_layers: int = 2
    ssm_state_size: int = 64
    ssm_width: int = 128

    @property
    def recurrent(self) -> bool:
        return self.policy_arch == "ssm"

    @property
    def policy_state_shape(self) -> tuple[int, ...]:
        """One env's recurrent policy state; () for a feed-forward policy."""
        return (self.ssm_layers, self.ssm_state_size) if self.recurrent else ()

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, payload: str) -> NetworkConfig:
        raw = json.loads(payload)
        raw["policy_hidden_sizes"] = tuple(raw["policy_hidden_sizes"])
        raw["value_hidden_sizes"] = tuple(raw["value_hidden_sizes"])
        return cls(**raw)


def make_network_config(
    spec: PpoSpec, observation_size: int | Mapping[str, Any], action_size: int
) -> NetworkConfig:
    """Derives the network config from the spec and the env's sizes."""
    value_obs_key = "state"
    if isinstance(observation_size, Mapping):
        observation_size = {key: list(_as_shape(size)) for key, size in observation_size.items()}
        if PRIVILEGED_OBS_KEY in observation_size:
            value_obs_key = PRIVILEGED_OBS_KEY
    return NetworkConfig(
        observation_size=observation_size,
        action_size=int(action_size),
        policy_hidden_sizes=tuple(spec.policy_hidden_sizes),
        value_hidden_sizes=tuple(spec.value_hidden_sizes),
        normalize_observations=spec.normalize_observations,
        value_obs_key=value_obs_key,
        policy_layer_norm=spec.policy_layer_norm,
        policy_arch=spec.policy_arch,
        ssm_layers=spec.ssm_layers,
        ssm_state_size=spec.ssm_state_size,
        ssm_width=spec.ssm_width,
    )


def _as_shape(size: int | tuple[int, ...] | list[int]) -> tuple[int, ...]:
    return (size,) if isinstance(size, int) else tuple(size)


def _observation_size(config: NetworkConfig) -> int | dict[str, tuple[int, ...]]:
    if isinstance(config.observation_size, int):
        return config.observation_size
    return {key: tuple(shape) for key, shape in config.observation_size.items()}


def make_networks(config: NetworkConfig) -> ppo_networks.PPONetworks:
    """Brax PPO networks (tanh-normal policy) for `config`."""
    normalize = (
        running_statistics.normalize
        if config.normalize_observations
        else brax_types.identity_observation_preprocessor
    )
    networks = ppo_networks.make_ppo_networks(
        _observation_size(config),
        config.action_size,
        preprocess_observations_fn=normalize,
        policy_hidden_layer_sizes=config.policy_hidden_sizes,
        value_hidden_layer_sizes=config.value_hidden_sizes,
        activation=ACTIVATIONS[config.activation],
        policy_obs_key=config.policy_obs_key,
        value_obs_key=config.value_obs_key,
    )
    if config.recurrent:
        return networks.replace(policy_network=make_ssm_policy_network(config, normalize))
    if not config.policy_layer_norm:
        return networks
    # Brax's make_ppo_networks has no LayerNorm switch; its policy network builder has.
    policy_network = brax_networks.make_policy_network(
        networks.parametric_action_distribution.param_size,
        _observation_size(config),
        preprocess_observations_fn=normalize,
        hidden_layer_sizes=config.policy_hidden_sizes,
        activation=ACTIVATIONS[config.activation],
        layer_norm=True,
        obs_key=config.policy_obs_key,
    )
    return networks.replace(policy_network=policy_network)


@dataclasses.dataclass(frozen=True)
class SsmPolicyNetwork:
    """The recurrent policy: init(key) -> params; both applies normalize the observation first.

    apply(normalizer, params, obs [T, B, ...], state [B, L, P], resets [T, B])
        -> (distribution params [T, B, 2A], final state): a whole segment (resettable scan).
    step(normalizer, params, obs [..., O], state [..., L, P]) -> (params, state'): one step.
    """

    init: Callable[[jax.Array], Any]
    apply: Callable[..., tuple[jax.Array, jax.Array]]
    step: Callable[..., tuple[jax.Array, jax.Array]]
    state_shape: tuple[int, ...]


def make_ssm_policy_network(config: NetworkConfig, normalize: Callable) -> SsmPolicyNetwork:
    module = SsmPolicy(
        output_size=2 * config.action_size,
        width=config.ssm_width,
        state_size=config.ssm_state_size,
        layers=config.ssm_layers,
    )
    size = _observation_size(config)
    obs_size = size if isinstance(size, int) else size[config.policy_obs_key][-1]
    state_shape = config.policy_state_shape

    def features(normalizer, obs):
        obs = normalize(obs, normalizer)
        return obs[config.policy_obs_key] if isinstance(obs, Mapping) else obs

    def init(key):
        return module.init(
            key, jnp.zeros((1, 1, obs_size)), jnp.zeros((1, *state_shape)), jnp.zeros((1, 1))
        )

    def apply(normalizer, params, obs, state, resets):
        return module.apply(params, features(normalizer, obs), state, resets)

    def step(normalizer, params, obs, state):
        return module.apply(params, features(normalizer, obs), state, method=SsmPolicy.step)

    return SsmPolicyNetwork(init=init, apply=apply, step=step, state_shape=state_shape)


def init_normalizer(config: NetworkConfig) -> running_statistics.RunningStatisticsState:
    """Fresh running statistics over one observation (no batch axes)."""
    size = _observation_size(config)
    if isinstance(size, int):
        obs_spec: Any = specs.Array((size,), jnp.dtype("float32"))
    else:
        obs_spec = {key: specs.Array(shape, jnp.dtype("float32")) for key, shape in size.items()}
    return running_statistics.init_state(obs_spec)


def init_params(networks: ppo_networks.PPONetworks, key: jax.Array) -> ppo_losses.PPONetworkParams:
    key_policy, key_value = jax.random.split(key)
    return ppo_losses.PPONetworkParams(
        policy=networks.policy_network.init(key_policy),
        value=networks.value_network.init(key_value),
    )
