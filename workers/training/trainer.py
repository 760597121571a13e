"""The static pieces of a PPO run (env, networks, optimizer, compiled iteration) and its state."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from brax.envs.base import Env
from brax.envs.wrappers import training as env_wrappers
from brax.training import types as brax_types
from brax.training.agents.ppo import networks as ppo_networks

from wildrobot.specs import PpoSpec

from . import distributed, recurrent
from . import networks as net
from .iteration import (
    AXIS,
    EXTENSION_STREAM,
    Extension,
    IterationFn,
    make_iteration_fn,
    make_optimizer,
)
from .loss import make_loss_fn
from .state import TrainingState

RANDOMIZATION_STREAM = 1  # fold_in index of the domain-randomization key


def make_base_env(task: str, env_overrides: dict[str, Any]) -> Env:
    """The unwrapped env of a registered task, with the spec's config overrides applied."""
    try:
        from wildrobot.envs import registry
    except ImportError:  # the env registry is not in this checkout yet
        from wildrobot.envs.point_mass import PointMass

        if task != "PointMass":
            raise
        return PointMass(config_overrides=env_overrides)
    return registry.make(task, config_overrides=dict(env_overrides))


def check_device_split(spec: PpoSpec, num_devices: int) -> None:
    """Raises ValueError when the spec's batch cannot be split evenly over num_devices (all
    devices of the run: every host's)."""
    if spec.num_envs % num_devices != 0:
        raise ValueError(
            f"num_envs ({spec.num_envs}) must be divisible by the number of devices ({num_devices})"
        )
    if spec.batch_size % num_devices != 0:
        raise ValueError(
            f"batch_size ({spec.batch_size}) must be divisible by the number of devices "
            f"({num_devices})"
        )


@dataclasses.dataclass(frozen=True)
class Trainer:
    """Static pieces of a run; `iteration_fn` is pmapped over all `num_global_devices` devices
    (every host's), of which this process feeds its `num_devices` local ones."""

    spec: PpoSpec
    base_env: Env
    env: Env  # wrapped: vmap, episode, auto-reset
    network_config: net.NetworkConfig
    networks: ppo_networks.PPONetworks
    optimizer: optax.GradientTransformation
    num_devices: int  # local
    iteration_fn: IterationFn  # pmapped; donates its input state
    num_global_devices: int = 0  # 0: same as num_devices (one host)
    first_row: int = 0  # this process's first device among the global ones
    extension: Extension | None = None  # AMP's discriminator; None for plain PPO

    @property
    def global_devices(self) -> int:
        return self.num_global_devices or self.num_devices


def make_trainer(
    spec: PpoSpec,
    base_env: Env | None = None,
    make_extension: Callable[[Env], Extension] | None = None,
) -> Trainer:
    """make_extension(base_env): an algorithm built on PPO (AMP); None for plain PPO."""
    num_devices = jax.local_device_count()
    num_global = jax.device_count()
    check_device_split(spec, num_global)
    if base_env is None:
        base_env = make_base_env(spec.task, spec.env_overrides)
    extension = make_extension(base_env) if make_extension is not None else None
    env = wrap_env(spec, base_env, spec.num_envs // num_global, RANDOMIZATION_STREAM, extension)
    network_config = net.make_network_config(spec, base_env.observation_size, base_env.action_size)
    networks = net.make_networks(network_config)
    optimizer = make_optimizer(spec)
    loss_fn = (
        recurrent.make_loss_fn(spec, networks)
        if network_config.recurrent
        else make_loss_fn(spec, networks)
    )
    iteration = make_iteration_fn(spec, env, networks, loss_fn, optimizer, extension)
    return Trainer(
        spec=spec,
        base_env=base_env,
        env=env,
        network_config=network_config,
        networks=networks,
        optimizer=optimizer,
        num_devices=num_devices,
        iteration_fn=jax.pmap(iteration, axis_name=AXIS, donate_argnums=0),
        num_global_devices=num_global,
        first_row=distributed.first_row() if num_global != num_devices else 0,
        extension=extension,
    )


def wrap_env(
    spec: PpoSpec, base_env: Env, num_worlds: int, stream: int, extension: Extension | None = None
) -> Env:
    """Vmap, episode and auto-reset wrappers, plus the env's domain randomization if it has one.

    With randomization the wrapped env steps exactly num_worlds envs (one world each), drawn
    once from (spec.seed, stream) and baked into the compiled program (Brax semantics), so a
    resume rebuilds the same worlds.
    """
    make_fn = getattr(base_env, "randomization_fn", None)
    randomization_fn = None
    if make_fn is not None:
        key = jax.random.fold_in(jax.random.PRNGKey(spec.seed), stream)
        randomization_fn = functools.partial(make_fn(), rng=jax.random.split(key, num_worlds))
    if extension is not None:  # its wrapper goes between the vmap and the episode wrappers
        return extension.wrap_env(base_env, spec.episode_length, randomization_fn)
    return env_wrappers.wrap(
        base_env, episode_length=spec.episode_length, randomization_fn=randomization_fn
    )


def init_state(trainer: Trainer) -> TrainingState:
    """A fresh training state from spec.seed, every leaf with a leading (local) device axis.

    Per-device rows are drawn for all global devices and this process keeps its own, so a run
    over N hosts starts from exactly the state one host with all N hosts' devices would.
    """
    spec, num_devices = trainer.spec, trainer.num_devices
    rows = slice(trainer.first_row, trainer.first_row + num_devices)
    key_params, key_envs, key_train = jax.random.split(jax.random.PRNGKey(spec.seed), 3)
    params = net.init_params(trainer.networks, key_params)
    replicated = {
        "params": params,
        "optimizer_state": trainer.optimizer.init(params),
        "normalizer": net.init_normalizer(trainer.network_config),
        "env_steps": brax_types.UInt64(hi=0, lo=0),
        "iteration": jnp.zeros((), jnp.int32),
    }
    replicated = jax.tree.map(
        lambda x: np.broadcast_to(np.asarray(x), (num_devices,) + np.shape(x)).copy(), replicated
    )
    keys_env = jax.random.split(key_envs, spec.num_envs).reshape(trainer.global_devices, -1, 2)
    env_state = jax.pmap(trainer.env.reset)(keys_env[rows])
    rng = jax.random.split(key_train, trainer.global_devices)[rows]
    if trainer.network_config.recurrent:  # every env starts an episode: zero state
        per_device = spec.num_envs // trainer.global_devices
        shape = (num_devices, per_device, *trainer.network_config.policy_state_shape)
        replicated["policy_state"] = np.zeros(shape, np.float32)
    if trainer.extension is not None:
        key_ext = jax.random.fold_in(jax.random.PRNGKey(spec.seed), EXTENSION_STREAM)
        extension = jax.tree.map(
            lambda x: np.broadcast_to(np.asarray(x), (num_devices,) + np.shape(x)).copy(),
            trainer.extension.init(key_ext),
        )
        return TrainingState(env_state=env_state, rng=rng, extension=extension, **replicated)
    return TrainingState(env_state=env_state, rng=rng, **replicated)
