"""Test-time adapters: a name -> strategy registry the TTA rollout runs per episode.

An adapter acts for one episode (the rollout vmaps it over episodes):
    init(params)                       -> adapter state, starting from the source policy
    act(params, state, obs, key)       -> (action [A], state after this step's adaptation)
    reset(params, state)               -> the state back at the source (episodic mode, collapse)
`params` (SourceParams: normalizer, policy and value parameters) is an argument of the compiled
rollout, never a constant folded into it, so every adapter computes its action with the same
program as `none` and a zero rate reproduces `none` bit for bit.
Adaptation happens inside the jitted rollout (lax.scan over control steps), never in Python.
Register a new one with `register(name)`; the rollout does not change.

The gradient-based adapters share `Guards`: gradient clipping (global norm), a bound on each
parameter's step, a trust region around an EMA anchor of the adapted parameters, and a reset to
the source parameters when the loss spikes (see `Guards.spike_factor`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import flax
import jax
import jax.numpy as jnp
import optax
from brax.training.acme import running_statistics
from brax.training.agents.ppo import networks as ppo_networks

ADAPTERS: dict[str, Callable[..., Adapter]] = {}


@flax.struct.dataclass
class SourceParams:
    """The trained policy's arrays: what the adapters start from and return to on a reset."""

    normalizer: running_statistics.RunningStatisticsState
    policy: Any  # policy params
    value: Any  # value params


@dataclass(frozen=True)
class Source:
    """The trained policy: its networks (functions) and parameters."""

    networks: ppo_networks.PPONetworks
    params: SourceParams


@dataclass(frozen=True)
class Guards:
    max_grad_norm: float = 1.0
    max_step: float = 0.01  # per parameter per update
    anchor_rate: float = 0.01  # EMA anchor: anchor += rate * (params - anchor)
    trust_radius: float = 0.2  # |params - anchor| bound, per parameter
    # Reset (tent) or skip (sysid) when the loss spikes: tent, whose loss can cross zero, when it
    # exceeds its running mean by this many running mean absolute deviations; sysid, whose
    # loss is a mean square, when it exceeds this x its running mean.
    spike_factor: float = 5.0


SPIKE_WARMUP = 10  # tent's losses seen before its spike reset may fire


class Adapter(Protocol):
    name: str

    def init(self, params: SourceParams) -> Any: ...

    def act(
        self, params: SourceParams, state: Any, obs: jax.Array, key: jax.Array
    ) -> tuple[jax.Array, Any]: ...

    def reset(self, params: SourceParams, state: Any) -> Any: ...

    def cost(self) -> dict[str, float]: ...


def register(name: str) -> Callable:
    def wrap(factory: Callable[..., Adapter]) -> Callable[..., Adapter]:
        ADAPTERS[name] = factory
        return factory

    return wrap


def make_adapter(name: str, source: Source, **settings: Any) -> Adapter:
    """The adapter `name` for `source`; ValueError naming the known ones for an unknown name."""
    if name not in ADAPTERS:
        raise ValueError(f"unknown adapter {name!r}; known: {', '.join(sorted(ADAPTERS))}")
    return ADAPTERS[name](source, **settings)


def deterministic_action(networks, normalizer, policy_params, obs: jax.Array) -> jax.Array:
    logits = networks.policy_network.apply(normalizer, policy_params, obs)
    return networks.parametric_action_distribution.mode(logits)


@register("none")
class NoAdaptation:
    """The source policy's deterministic action; nothing changes."""

    name = "none"

    def __init__(self, source: Source, learning_rate: float = 0.0, **_: Any) -> None:
        self.networks = source.networks

    def init(self, params: SourceParams) -> jax.Array:
        return jnp.zeros(())

    def act(self, params: SourceParams, state, obs, key):
        del key
        return deterministic_action(self.networks, params.normalizer, params.policy, obs), state

    def reset(self, params: SourceParams, state):
        return jnp.zeros(())

    def cost(self) -> dict[str, float]:
        return {"policy_forwards": 1.0, "backward_passes": 0.0}


@flax.struct.dataclass
class NormState:
    mean: jax.Array
    std: jax.Array


@register("obs_norm")
class ObsNorm:
    """Re-estimates the observation normalizer's mean and std online, per episode.

    Each step, with d = obs - mean: mean += rate d; var = std^2 (1 + rate (d^2 / std^2 - 1)),
    starting from the source statistics (written so that rate 0 keeps them bit for bit). Guards:
    the std stays within [1/std_bound, std_bound] x the source std (an observation that stops
    varying, a constant command, must not blow up its normalized value), and the mean within
    `mean_bound` source stds of the source mean.
    """

    name = "obs_norm"

    def __init__(
        self,
        source: Source,
        learning_rate: float = 0.01,
        std_bound: float = 2.0,
        mean_bound: float = 3.0,
        **_: Any,
    ) -> None:
        self.networks, self.rate = source.networks, learning_rate
        self.std_bound, self.mean_bound = std_bound, mean_bound

    def init(self, params: SourceParams) -> NormState:
        return NormState(mean=params.normalizer.mean, std=params.normalizer.std)

    def act(self, params: SourceParams, state: NormState, obs, key):
        del key
        src_mean, src_std = params.normalizer.mean, params.normalizer.std
        delta = obs - state.mean
        mean = state.mean + self.rate * delta
        ratio = 1.0 + self.rate * (jnp.square(delta / state.std) - 1.0)
        std = state.std * jnp.sqrt(jnp.maximum(ratio, 0.0))
        bound = self.mean_bound * src_std
        mean = jnp.clip(mean, src_mean - bound, src_mean + bound)
        std = jnp.clip(std, src_std / self.std_bound, src_std * self.std_bound)
        normalizer = params.normalizer.replace(mean=mean, std=std)
        action = deterministic_action(self.networks, normalizer, params.policy, obs)
        return action, NormState(mean=mean, std=std)

    def reset(self, params: SourceParams, state):
        return self.init(params)

    def cost(self) -> dict[str, float]:
        return {"policy_forwards": 1.0, "backward_passes": 0.0}


@flax.struct.dataclass
class TentState:
    norms: Any  # the LayerNorm scale/bias the adapter updates
    anchor: Any  # EMA of norms: the trust region's centre
    loss_mean: jax.Array  # running mean of the loss (spike detection)
    loss_dev: jax.Array  # running mean absolute deviation of the loss from loss_mean
    seen: jax.Array  # losses seen since the last reset
    resets: jax.Array  # how many times it fell back to the source


def layer_norm_params(policy_params) -> dict[str, Any]:
    layers = policy_params["params"]
    return {name: value for name, value in layers.items() if name.startswith("LayerNorm_")}


def with_layer_norms(policy_params, norms) -> Any:
    return {**policy_params, "params": {**policy_params["params"], **norms}}


@register("tent")
class Tent:
    """Tent for a Gaussian policy: one gradient step per control step on

        loss = H(pi(.|obs)) + kl_weight * KL(pi(.|obs) || pi_source(.|obs))

    over the policy's LayerNorm scale and shift only (a policy trained with policy_layer_norm),
    with the shared Guards. H is the entropy of the pre-tanh Gaussian; with Brax's head it
    depends only on the predicted scale, so the mean action moves only through the shared
    layers (measured in docs/tta.md, not assumed to help).
    """

    name = "tent"

    def __init__(
        self,
        source: Source,
        learning_rate: float = 1e-3,
        kl_weight: float = 1.0,
        guards: Guards | None = None,
        **_: Any,
    ) -> None:
        if not layer_norm_params(source.params.policy):
            raise ValueError(
                "tent adapts LayerNorm parameters and this policy has none: train it with "
                "policy_layer_norm=true"
            )
        self.networks, self.rate, self.kl_weight = source.networks, learning_rate, kl_weight
        self.guards = guards or Guards()

    def init(self, params: SourceParams) -> TentState:
        norms = layer_norm_params(params.policy)
        zero = jnp.zeros(())
        return TentState(
            norms=norms,
            anchor=norms,
            loss_mean=zero,
            loss_dev=zero,
            seen=jnp.zeros((), jnp.int32),
            resets=jnp.zeros((), jnp.int32),
        )

    def loss(self, params: SourceParams, norms, obs) -> jax.Array:
        """Entropy of the adapted policy at obs plus kl_weight x KL(adapted || source)."""
        dist = self.networks.parametric_action_distribution
        apply = self.networks.policy_network.apply
        logits = apply(params.normalizer, with_layer_norms(params.policy, norms), obs)
        source_logits = jax.lax.stop_gradient(apply(params.normalizer, params.policy, obs))
        mean, scale = _gaussian(dist, logits)
        source_mean, source_scale = _gaussian(dist, source_logits)
        entropy = jnp.sum(jnp.log(scale)) + 0.5 * mean.shape[-1] * (1.0 + jnp.log(2 * jnp.pi))
        return entropy + self.kl_weight * gaussian_kl(mean, scale, source_mean, source_scale)

    def act(self, params: SourceParams, state: TentState, obs, key):
        del key
        g = self.guards
        source_norms = layer_norm_params(params.policy)
        loss, grads = jax.value_and_grad(lambda n: self.loss(params, n, obs))(state.norms)
        grads = _clip_global(grads, g.max_grad_norm)
        step = jax.tree.map(
            lambda grad: jnp.clip(-self.rate * grad, -g.max_step, g.max_step), grads
        )
        norms = jax.tree.map(jnp.add, state.norms, step)
        anchor = jax.tree.map(lambda a, p: a + g.anchor_rate * (p - a), state.anchor, norms)
        norms = jax.tree.map(
            lambda p, a: jnp.clip(p, a - g.trust_radius, a + g.trust_radius), norms, anchor
        )
        # The loss (an entropy) can be negative or cross zero, so a spike is measured from its
        # running mean in units of its running mean absolute deviation, not as a ratio to it.
        spike = loss_spike(loss, state.loss_mean, state.loss_dev, state.seen, g.spike_factor)
        norms = jax.tree.map(lambda p, s: jnp.where(spike, s, p), norms, source_norms)
        anchor = jax.tree.map(lambda p, s: jnp.where(spike, s, p), anchor, source_norms)
        first = state.seen == 0
        loss_mean = jnp.where(first, loss, 0.99 * state.loss_mean + 0.01 * loss)
        loss_dev = jnp.where(
            first, 0.0, 0.99 * state.loss_dev + 0.01 * jnp.abs(loss - state.loss_mean)
        )
        policy = with_layer_norms(params.policy, norms)
        action = deterministic_action(self.networks, params.normalizer, policy, obs)
        zero = jnp.zeros(())
        return action, TentState(
            norms=norms,
            anchor=anchor,
            loss_mean=jnp.where(spike, zero, loss_mean),
            loss_dev=jnp.where(spike, zero, loss_dev),
            seen=jnp.where(spike, 0, state.seen + 1),
            resets=state.resets + spike.astype(jnp.int32),
        )

    def counters(self, state: TentState) -> dict[str, jax.Array]:
        """Spike resets to the source, for the report (per episode, per cell)."""
        return {"resets": state.resets}

    def reset(self, params: SourceParams, state: TentState):
        return self.init(params).replace(resets=state.resets + 1)

    def cost(self) -> dict[str, float]:
        # The loss's forward (adapted and source) and backward, then the acting forward.
        return {"policy_forwards": 3.0, "backward_passes": 1.0}


def loss_spike(loss, mean, deviation, seen, factor: float) -> jax.Array:
    """Tent's spike: a non-finite loss, or (after SPIKE_WARMUP losses) one more than `factor`
    running mean absolute deviations above the running mean. A ratio to the mean would fire
    whenever a loss that crosses zero (an entropy) has a mean near 0."""
    above = loss - mean > factor * jnp.maximum(deviation, 1e-6)
    return ((seen >= SPIKE_WARMUP) & above) | ~jnp.isfinite(loss)


def _gaussian(dist, logits) -> tuple[jax.Array, jax.Array]:
    """Mean and scale of Brax's (tanh-)normal head, before the tanh."""
    loc, scale = jnp.split(logits, 2, axis=-1)
    return loc, (jax.nn.softplus(scale) + dist._min_std) * dist._var_scale


def gaussian_kl(mean, scale, mean0, scale0) -> jax.Array:
    """KL(N(mean, scale) || N(mean0, scale0)), summed over the action dimensions."""
    return jnp.sum(
        jnp.log(scale0 / scale)
        + (jnp.square(scale) + jnp.square(mean - mean0)) / (2 * jnp.square(scale0))
        - 0.5
    )


def _clip_global(tree, max_norm: float):
    norm = optax.tree.norm(tree)
    factor = jnp.minimum(1.0, max_norm / jnp.maximum(norm, 1e-12))
    return jax.tree.map(lambda g: g * factor, tree)


@flax.struct.dataclass
class SysIdState:
    log_scale: jax.Array  # [2]: log of the estimated mass and servo-kp scales
    anchor: jax.Array  # [2]: EMA of log_scale (the trust region's centre)
    loss_mean: jax.Array
    resets: jax.Array
    updates: jax.Array  # transitions used
    # The Gauss-Newton step's rate: state, not a constant compiled into the rollout, so one
    # program serves every rate (tests/tta/test_privilege.py runs rate 0 on the same compile).
    rate: jax.Array


SYSID_PARAMETERS = ("mass_scale", "kp_scale")


@register("sysid")
class SysId:
    """Fits the robot's mass and servo-gain scales online through the differentiable MJX model.

    Each control step it replays the observed transition (the simulator's joint and base state
    before it, without sensor noise, and the action taken: its declared `noise_free_state`)
    through `env.step` under the current estimate, with no push (which the robot cannot know),
    the training latency's middle (not the episode's: the latency shift stays unknown to it)
    and the calibrated backlash, and takes one damped Gauss-Newton step on the log-scales to
    match the observed next joint and root velocities; the Jacobian comes from forward-mode
    differentiation through the physics substeps (jax.jacfwd). Its model family is exactly
    the one the mass and kp shifts draw from (`shifts.apply_to_model`), so on those shifts a
    near-zero error is expected by construction. Guards: gradient clipping (global norm), the
    shared step bound, trust region around an EMA anchor and a skipped update on a loss spike
    (a push the model does not know about). The policy acts unchanged: the estimate is reported
    against the truth and is the model `sysid_best_of_n`'s lookahead plans under
    (`model_estimate`).
    """

    name = "sysid"

    def __init__(
        self,
        source: Source,
        env: Any = None,
        learning_rate: float = 0.3,
        damping: float = 1e-3,
        guards: Guards | None = None,
        **_: Any,
    ) -> None:
        if env is None:
            raise ValueError("sysid needs the env whose model it fits")
        self.networks, self.env, self.rate, self.damping = (
            source.networks,
            env,
            learning_rate,
            damping,
        )
        self.guards = guards or Guards(max_step=0.05, trust_radius=0.5, spike_factor=5.0)
        # The training latency's middle: the robot knows its calibrated range, not the episode's.
        self.nominal_substeps = int(round(sum(env.config.latency.action_substeps) / 2))

    def init(self, params: SourceParams) -> SysIdState:
        zero = jnp.zeros(len(SYSID_PARAMETERS))
        count = jnp.zeros((), jnp.int32)
        return SysIdState(
            zero, zero, jnp.zeros(()), count, count, jnp.asarray(self.rate, jnp.float32)
        )

    def act(self, params: SourceParams, state: SysIdState, obs, key):
        del key
        return deterministic_action(self.networks, params.normalizer, params.policy, obs), state

    def predict_qvel(self, log_scale: jax.Array, before, action: jax.Array) -> jax.Array:
        """qvel after one control step from `before` under the estimate (unbatched)."""
        from . import shifts as shift_lib

        env = self.env
        base_sys = env.sys
        shift = shift_lib.ShiftParams(
            mass_scale=jnp.exp(log_scale[0]), kp_scale=jnp.exp(log_scale[1])
        )
        info = dict(before.info)
        info["push_force"] = jnp.zeros_like(info["push_force"])
        info["action_substeps"] = jnp.asarray(self.nominal_substeps, jnp.int32)
        with env.using_model(shift_lib.apply_to_model(env, shift, base_sys)):
            after = env.step(before.replace(info=info), action)
        return after.pipeline_state.qvel

    def observe(self, state: SysIdState, before, action: jax.Array, after) -> SysIdState:
        g = self.guards
        observed = after.pipeline_state.qvel
        predict = lambda s: self.predict_qvel(s, before, action)  # noqa: E731
        # One forward-mode pass gives the prediction (as aux) and its Jacobian [nv, 2]: the
        # replayed env.step is traced once, not once more for the primal alone.
        jac, predicted = jax.jacfwd(lambda s: (predict(s),) * 2, has_aux=True)(state.log_scale)
        residual = predicted - observed
        loss = jnp.mean(jnp.square(residual))
        hessian = (
            jac.T @ jac + self.damping * jnp.trace(jac.T @ jac) * jnp.eye(2) + 1e-9 * jnp.eye(2)
        )
        gradient = _clip_global(jac.T @ residual, g.max_grad_norm)
        step = -state.rate * jnp.linalg.solve(hessian, gradient)
        step = jnp.clip(step, -g.max_step, g.max_step)
        log_scale = state.log_scale + step
        anchor = state.anchor + g.anchor_rate * (log_scale - state.anchor)
        log_scale = jnp.clip(log_scale, anchor - g.trust_radius, anchor + g.trust_radius)
        spike = (
            ((state.loss_mean > 0) & (loss > g.spike_factor * state.loss_mean))
            | ~jnp.isfinite(loss)
            | ~jnp.all(jnp.isfinite(log_scale))
        )
        # A spike (an unmodelled push) skips the update rather than trusting it.
        log_scale = jnp.where(spike, state.log_scale, log_scale)
        anchor = jnp.where(spike, state.anchor, anchor)
        loss_mean = jnp.where(state.loss_mean == 0, loss, 0.95 * state.loss_mean + 0.05 * loss)
        return SysIdState(
            log_scale=log_scale,
            anchor=anchor,
            loss_mean=jnp.where(jnp.isfinite(loss), loss_mean, state.loss_mean),
            resets=state.resets + spike.astype(jnp.int32),
            updates=state.updates + (~spike).astype(jnp.int32),
            rate=state.rate,
        )

    def estimates(self, state: SysIdState) -> dict[str, jax.Array]:
        return {name: jnp.exp(state.log_scale[..., i]) for i, name in enumerate(SYSID_PARAMETERS)}

    def model_estimate(self, state: SysIdState):
        """The estimate as a shift (one episode): the model best_of_n's lookahead plans under."""
        from . import shifts as shift_lib

        return shift_lib.ShiftParams(**self.estimates(state))

    def reset(self, params: SourceParams, state: SysIdState):
        return self.init(params).replace(resets=state.resets + 1, rate=state.rate)

    def cost(self) -> dict[str, float]:
        # The acting forward; the replay: one primal and two tangent control steps (forward mode).
        return {"policy_forwards": 1.0, "backward_passes": 0.0, "model_sim_steps_factor": 3.0}


# Adapters defined in their own modules register on import (they build on this module).
from . import meta as _meta  # noqa: E402, F401  (maml)
