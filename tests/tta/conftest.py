"""A WildRobot-sized policy to adapt: fresh networks (no training needed for the mechanics)."""

from __future__ import annotations

import pytest


def make_source(layer_norm: bool, seed: int = 0):
    import jax
    import jax.numpy as jnp

    from wildrobot.envs.wildrobot.base import OBS_SIZE
    from wildrobot.envs.wildrobot.constants import NUM_ACTUATORS
    from wildrobot.specs import PpoSpec
    from wildrobot.workers.training import networks as net
    from wildrobot.workers.tta.adapters import Source, SourceParams

    spec = PpoSpec(
        task="WildRobotStand",
        policy_hidden_sizes=(32, 32),
        value_hidden_sizes=(32, 32),
        policy_layer_norm=layer_norm,
    )
    config = net.make_network_config(spec, OBS_SIZE, NUM_ACTUATORS)
    networks = net.make_networks(config)
    params = net.init_params(networks, jax.random.PRNGKey(seed))
    normalizer = net.init_normalizer(config)
    # A normalizer as after training: non-trivial mean and std.
    key_mean, key_std = jax.random.split(jax.random.PRNGKey(seed + 1))
    normalizer = normalizer.replace(
        mean=0.1 * jax.random.normal(key_mean, normalizer.mean.shape),
        std=jnp.exp(0.3 * jax.random.normal(key_std, normalizer.std.shape)),
    )
    return Source(networks, SourceParams(normalizer, params.policy, params.value))


@pytest.fixture(scope="module")
def ln_source():
    return make_source(layer_norm=True)


@pytest.fixture(scope="module")
def plain_source():
    return make_source(layer_norm=False)
