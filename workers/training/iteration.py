"""One jitted PPO training iteration: rollout -> normalizer update -> epochs of minibatch SGD.

The iteration is a per-device function over `TrainingState`; the loop pmaps it over local devices
with axis name AXIS, so gradients, normalizer statistics and metrics are reduced across devices.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import optax
from brax.envs.base import Env
from brax.training import acting, gradients
from brax.training import types as brax_types
from brax.training.acme import running_statistics
from brax.training.agents.ppo import networks as ppo_networks

from wildrobot.specs import PpoSpec

from . import networks as net
from . import recurrent
from .loss import LossFn
from .state import TrainingState

AXIS = "devices"
EXTENSION_STREAM = 0x616D70  # fold_in index of an extension's keys ("amp")
STATE_EXTRAS = ("truncation", "episode_metrics", "episode_done")
LOSS_METRICS = {
    "total_loss": "loss/total",
    "policy_loss": "loss/policy",
    "v_loss": "loss/value",
    "entropy_loss": "loss/entropy",
    "kl_mean": "policy/approx_kl",
    "policy_dist_mean_std": "policy/action_std",
}

IterationFn = Callable[[TrainingState], tuple[TrainingState, dict[str, jax.Array]]]


class Extension(Protocol):
    """What an algorithm built on PPO (AMP) adds to the iteration, inside the same jitted step.

    state_extras: env info fields to collect with every transition (for example "amp_window").
    shape_reward: after the rollout, before any update: the rewards PPO optimizes (and metrics),
        from the extension's state as it was when the rollout was collected.
    update: after PPO's epochs, the extension's own training on this rollout's data.
    Both get a PRNG key of their own and run per device under pmap (axis AXIS).
    wrap_env: Brax's training wrappers (vmap or domain-randomization vmap, episode, auto-reset)
        around the base env, with the extension's own wrapper that provides the state extras.
    """

    state_extras: tuple[str, ...]

    def wrap_env(self, env: Env, episode_length: int, randomization_fn: Any) -> Env: ...

    def init(self, key: jax.Array) -> Any: ...

    def shape_reward(
        self, ext_state: Any, data: brax_types.Transition, key: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]: ...

    def update(
        self, ext_state: Any, data: brax_types.Transition, key: jax.Array
    ) -> tuple[Any, dict[str, jax.Array]]: ...

    def trainable(self, ext_state: Any) -> Any:
        """The parameters the NaN guard checks along with PPO's."""
        ...


def updates_per_iteration(spec: PpoSpec) -> int:
    """Optimizer updates one iteration makes: epochs x minibatches."""
    return spec.num_updates_per_batch * spec.num_minibatches


def learning_rate_schedule(spec: PpoSpec) -> optax.Schedule:
    """update count -> learning rate: constant, or decaying to 0 at the run's last update."""
    total = max(spec.num_iterations * updates_per_iteration(spec), 1)
    if spec.learning_rate_schedule == "linear":
        return optax.linear_schedule(spec.learning_rate, 0.0, total)
    if spec.learning_rate_schedule == "cosine":
        return optax.cosine_decay_schedule(spec.learning_rate, total)
    return optax.constant_schedule(spec.learning_rate)


def make_optimizer(spec: PpoSpec) -> optax.GradientTransformation:
    return optax.chain(
        optax.clip_by_global_norm(spec.max_grad_norm), optax.adam(learning_rate_schedule(spec))
    )


def make_iteration_fn(
    spec: PpoSpec,
    env: Env,
    networks: ppo_networks.PPONetworks,
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    extension: Extension | None = None,
) -> IterationFn:
    """Returns iteration(state) -> (state, metrics); call it under pmap(axis_name=AXIS).

    Per device: num_envs / num_devices envs do (batch_size * num_minibatches / num_envs) unrolls of
    unroll_length steps; minibatches hold batch_size / num_devices sequences each.
    """
    num_unrolls = spec.batch_size * spec.num_minibatches // spec.num_envs
    make_policy = ppo_networks.make_inference_fn(networks)
    is_recurrent = isinstance(networks.policy_network, net.SsmPolicyNetwork)
    state_extras = STATE_EXTRAS + (extension.state_extras if extension is not None else ())
    loss_and_grad_fn = gradients.loss_and_pgrad(loss_fn, pmap_axis_name=AXIS, has_aux=True)

    def rollout(state: TrainingState, key: jax.Array):
        if is_recurrent:
            return recurrent_rollout(state, key)
        policy = make_policy((state.normalizer, state.params.policy, state.params.value))

        def unroll(carry, _):
            env_state, key_unroll = carry
            key_unroll, key_next = jax.random.split(key_unroll)
            env_state, data = acting.generate_unroll(
                env, env_state, policy, key_unroll, spec.unroll_length, extra_fields=state_extras
            )
            return (env_state, key_next), data

        (env_state, _), data = jax.lax.scan(unroll, (state.env_state, key), (), length=num_unrolls)
        return (env_state, None), _segments(data)

    def recurrent_rollout(state: TrainingState, key: jax.Array):
        params = (state.normalizer, state.params.policy)

        def unroll(carry, _):
            env_state, policy_state, key_unroll = carry
            key_unroll, key_next = jax.random.split(key_unroll)
            env_state, policy_state, data = recurrent.unroll(
                env, env_state, policy_state, networks, params, key_unroll, spec.unroll_length,
                state_extras,
            )  # fmt: skip
            return (env_state, policy_state, key_next), data

        (env_state, policy_state, _), data = jax.lax.scan(
            unroll, (state.env_state, state.policy_state, key), (), length=num_unrolls
        )
        initial = data.extras.pop(recurrent.POLICY_STATE_KEY)  # [num_unrolls, envs, L, P]
        data = _segments(data)
        data.extras[recurrent.POLICY_STATE_KEY] = jnp.reshape(initial, (-1,) + initial.shape[2:])
        return (env_state, policy_state), data

    def minibatch_step(carry, batch: brax_types.Transition, normalizer):
        optimizer_state, params, key = carry
        key, key_loss = jax.random.split(key)
        (_, metrics), grads = loss_and_grad_fn(params, normalizer, batch, key_loss)
        updates, optimizer_state = optimizer.update(grads, optimizer_state, params)
        params = optax.apply_updates(params, updates)
        metrics = dict(metrics, grad_norm=optax.tree.norm(grads))
        return (optimizer_state, params, key), metrics

    def epoch(carry, _, data: brax_types.Transition, normalizer):
        optimizer_state, params, key = carry
        key, key_perm, key_grad = jax.random.split(key, 3)

        def to_minibatches(x):
            x = jax.random.permutation(key_perm, x)
            return jnp.reshape(x, (spec.num_minibatches, -1) + x.shape[1:])

        (optimizer_state, params, _), metrics = jax.lax.scan(
            lambda c, b: minibatch_step(c, b, normalizer),
            (optimizer_state, params, key_grad),
            jax.tree.map(to_minibatches, data),
        )
        return (optimizer_state, params, key), metrics

    def iteration(state: TrainingState) -> tuple[TrainingState, dict[str, jax.Array]]:
        key_unroll, key_sgd, key_next = jax.random.split(state.rng, 3)
        (env_state, policy_state), data = rollout(state, key_unroll)
        state_extras = data.extras["state_extras"]
        ext_metrics: dict[str, jax.Array] = {}
        if extension is not None:
            key_reward, key_ext = jax.random.split(jax.random.fold_in(state.rng, EXTENSION_STREAM))
            rewards, ext_metrics = extension.shape_reward(state.extension, data, key_reward)
            ext_data = data
            data = data._replace(reward=rewards)
        # The loss needs only truncation; don't shuffle episode bookkeeping through every epoch.
        # (and a recurrent policy's segment initial states, which the loss starts from).
        data = data._replace(
            extras={
                "policy_extras": data.extras["policy_extras"],
                "state_extras": {"truncation": state_extras["truncation"]},
                **{k: v for k, v in data.extras.items() if k == recurrent.POLICY_STATE_KEY},
            }
        )
        normalizer = running_statistics.update(
            state.normalizer, data.observation, pmap_axis_name=AXIS
        )
        (optimizer_state, params, _), sgd_metrics = jax.lax.scan(
            lambda c, u: epoch(c, u, data, normalizer),
            (state.optimizer_state, state.params, key_sgd),
            (),
            length=spec.num_updates_per_batch,
        )
        metrics = {
            name: jax.lax.pmean(jnp.mean(sgd_metrics[key]), AXIS)
            for key, name in LOSS_METRICS.items()
        }
        # max, not mean: one non-finite minibatch gradient must show (max propagates NaN).
        metrics["gradient_norm"] = jnp.max(sgd_metrics["grad_norm"])
        ext_state = state.extension
        if extension is not None:
            ext_state, update_metrics = extension.update(state.extension, ext_data, key_ext)
            ext_metrics = {**ext_metrics, **update_metrics}
            params_finite = _all_finite((params, extension.trainable(ext_state)))
        else:
            params_finite = _all_finite(params)
        metrics["params_finite"] = params_finite
        metrics.update(ext_metrics)
        metrics.update(_episode_metrics(state_extras))
        new_state = TrainingState(
            params=params,
            optimizer_state=optimizer_state,
            normalizer=normalizer,
            env_state=env_state,
            env_steps=state.env_steps + spec.env_steps_per_iteration,
            iteration=state.iteration + 1,
            rng=key_next,
            extension=ext_state,
            policy_state=policy_state,
        )
        return new_state, metrics

    return iteration


def _segments(data: brax_types.Transition) -> brax_types.Transition:
    """[num_unrolls, T, envs, ...] -> [num_unrolls * envs, T, ...]: sequences of T steps."""
    data = jax.tree.map(lambda x: jnp.swapaxes(x, 1, 2), data)
    return jax.tree.map(lambda x: jnp.reshape(x, (-1,) + x.shape[2:]), data)


def _all_finite(tree) -> jax.Array:
    leaves = jax.tree.leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves])).astype(jnp.float32)


def _episode_metrics(state_extras: dict) -> dict[str, jax.Array]:
    """Means over the episodes that ended in this rollout, across devices.

    episode/count is how many ended; the other values are meaningless when it is 0.
    """
    done = state_extras["episode_done"]
    count = jax.lax.psum(jnp.sum(done), AXIS)
    metrics = {"episode/count": count}
    for name, value in state_extras["episode_metrics"].items():
        total = jax.lax.psum(jnp.sum(value * done), AXIS)
        metrics[_episode_metric_name(name)] = total / jnp.maximum(count, 1.0)
    return metrics


def _episode_metric_name(name: str) -> str:
    if name == "sum_reward":
        return "episode/reward"
    if name == "length":
        return "episode/length"
    return name if name.startswith("reward/") else f"episode/{name}"
