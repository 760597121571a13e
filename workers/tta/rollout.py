"""One compiled TTA rollout: episodes under per-episode shifts, acted by an adapter, optionally
with best-of-N test-time compute.

`make_rollout` compiles once per (env, adapter, N, horizon, shapes): shift values, adapter state
and keys are arguments, so every shift and severity of a method reuses the program. One episode
per env slot, no auto-reset: an episode ends at its first fall (the env's termination) or at
`episode_length` control steps.

best_of_n: each control step the adapter's action is candidate 0 and N-1 more are sampled from
the source policy's distribution; each is scored by an H-step lookahead in MJX (the candidate,
then the source policy's deterministic actions) as the discounted task reward plus the critic's
value at the horizon, and the best is taken. The lookahead runs with no push and the training
latency, and starts from the state the robot estimates from its measured observation
(`env.state_from_measurement`: tilt and angular velocity from the shifted IMU reading, joints from
the encoders, the rest assumed); its observations come from the env's own (nominal) sensor model.
With `privileged=True` (`best_of_n_oracle`) it starts from the true simulator state instead. It
runs the *nominal* model, unless the adapter estimates one (`model_estimate`, sysid's fitted mass
and servo gain): then it plans under the estimate as it stands at that step (`sysid_best_of_n`).
N = 1 is exactly the adapter's action.

An adapter with `prepare` (maml, workers/tta/meta.py) first runs its own adaptation episodes in
each slot's shifted env (`collect`: its behaviour policy sampling actions, the shift's sensor
corruption on the observations it records) and adapts on them; the evaluated episodes then meet
the same keys as every other method's (the adaptation's keys are folded off the run's key).

Everything a method reads of the env state passes through `method_view` (identity; the
structural test puts garbage there, tests/tta/test_privilege.py). The methods' code runs outside
`env.using_model`, so the model it sees is the nominal one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from brax.envs.base import Env, State

from wildrobot.envs.wildrobot import base

from ..maml.algorithm import Batch
from ..training.rollout import velocity_report
from . import shifts as shift_lib
from .adapters import Adapter, Source, SourceParams, deterministic_action

RolloutFn = Callable[..., tuple[dict[str, jax.Array], Any]]


def make_rollout(
    env: Env,
    source: Source,
    adapter: Adapter,
    num_episodes: int,
    episode_length: int,
    samples: int = 1,
    horizon: int = 0,
    discount: float = 0.97,
    privileged: bool = False,
    method_view: Callable[[State, Any], State] | None = None,
) -> RolloutFn:
    """run(source_params, shift_params [E], adapter_state [E], key) -> (values, adapter_state).

    source_params: the policy's SourceParams (an argument, not a compiled-in constant).
    privileged: best-of-N's lookahead starts from the true simulator state (`*_oracle`).
    method_view: (state, view_arg) -> state, applied to every env State a method is handed (one
    episode's); view_arg is run's optional last argument (so one compile serves both runs of the
    structural test)."""
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    if samples > 1 and horizon < 1:
        raise ValueError("best_of_n needs a lookahead horizon >= 1")
    base_sys = env.sys
    cfg = env.config
    nominal_substeps = int(round(sum(cfg.latency.action_substeps) / 2))
    gravity_slice, gyro_slice = base.observation_slice("gravity"), base.observation_slice("gyro")
    noise_scale = cfg.noise.level * jnp.concatenate(
        [jnp.full(3, cfg.noise.gravity), jnp.full(3, cfg.noise.gyro)]
    )

    def model_of(params: shift_lib.ShiftParams):
        model = shift_lib.apply_to_model(env, params, base_sys)
        fields = {name: getattr(model, name) for name in shift_lib.MODEL_FIELDS}
        return fields, model.opt.gravity

    def with_model(fields, gravity, fn, *args):
        model = base_sys.tree_replace(fields)
        with env.using_model(model.replace(opt=model.opt.replace(gravity=gravity))):
            return fn(*args)

    def corrupt(obs, params: shift_lib.ShiftParams, key):
        """The IMU shift on one observation: bias plus extra uniform noise."""
        noise = jax.random.uniform(key, (6,), minval=-1.0, maxval=1.0) * noise_scale
        imu = jnp.concatenate([params.gravity_bias, params.gyro_bias]) + params.imu_noise * noise
        obs = obs.at[gravity_slice].add(imu[:3])
        return obs.at[gyro_slice].add(imu[3:])

    def override(state: State, params: shift_lib.ShiftParams) -> State:
        info = dict(state.info)
        force = info["push_force"]
        norm = jnp.linalg.norm(force)
        scaled = force / jnp.maximum(norm, 1e-9) * params.push_magnitude
        info["push_force"] = jnp.where(params.push_magnitude >= 0, scaled, force)
        info["action_substeps"] = jnp.where(
            params.action_substeps >= 0, params.action_substeps, info["action_substeps"]
        )
        return state.replace(info=info)

    networks = source.networks
    observe = getattr(adapter, "observe", None)
    model_estimate = getattr(adapter, "model_estimate", None)
    prepare = getattr(adapter, "prepare", None)

    def collect(params: SourceParams, adapter_state, shift_params, fields, gravity, key) -> Batch:
        """The adaptation episodes of an adapter with `prepare` (maml): per episode slot,
        `adapt_episodes` episodes of `episode_length` steps in the slot's shifted env, acted by
        the adapter's behaviour policy sampling its actions. Batch [E] of [T, M, ...]."""
        m = adapter.adapt_episodes
        dist = networks.parametric_action_distribution
        policy = jax.vmap(adapter.behaviour_policy)(adapter_state)  # [E] parameter trees
        key_reset, key_steps = jax.random.split(key)
        state = jax.vmap(
            lambda f, g, keys: jax.vmap(lambda k: with_model(f, g, env.reset, k))(keys)
        )(fields, gravity, jax.random.split(key_reset, (num_episodes, m)))
        override_all = jax.vmap(jax.vmap(override, in_axes=(0, None)))  # [E, M] worlds
        corrupt_all = jax.vmap(jax.vmap(corrupt, in_axes=(0, None, 0)))
        state = override_all(state, shift_params)

        def slot_logits(p, obs):  # one slot's parameters on its M observations
            return networks.policy_network.apply(params.normalizer, p, obs)

        def body(carry, key):
            state, alive = carry
            key_noise, key_act = jax.random.split(key)
            obs = corrupt_all(
                state.obs, shift_params, jax.random.split(key_noise, (num_episodes, m))
            )
            logits = jax.vmap(slot_logits)(policy, obs)
            raw = dist.sample_no_postprocessing(logits, key_act)
            logp = dist.log_prob(logits, raw)
            state = override_all(state, shift_params)
            nxt = jax.vmap(
                lambda f, g, ss, aa: jax.vmap(lambda s, a: with_model(f, g, env.step, s, a))(ss, aa)
            )(fields, gravity, state, dist.postprocess(raw))
            reward = jnp.where(alive > 0, nxt.reward, 0.0)
            out = (obs, raw, logp, reward, alive, alive * nxt.done)
            return (nxt, alive * (1.0 - nxt.done)), out

        _, out = jax.lax.scan(
            body,
            (state, jnp.ones((num_episodes, m))),
            jax.random.split(key_steps, episode_length),
        )
        slot_major = lambda x: jnp.moveaxis(x, 0, 1)  # [T, E, M, ...] -> [E, T, M, ...]  # noqa: E731
        obs, raw, logp, reward, alive, ended = (slot_major(x) for x in out)
        return Batch(obs, raw, logp, reward, alive, ended)

    def lookahead_start(state: State, obs: jax.Array) -> State:
        """Where the lookahead starts: the state estimated from the measurement (or, privileged,
        the true one), with no push and the training latency."""
        if not privileged:
            state = env.state_from_measurement(obs, state.info)
        info = dict(state.info)
        info["push_force"] = jnp.zeros_like(info["push_force"])
        info["action_substeps"] = jnp.asarray(nominal_substeps, jnp.int32)
        return state.replace(info=info)

    def lookahead_score(params: SourceParams, state: State, action: jax.Array) -> jax.Array:
        """The candidate's first step, then the policy's for the rest of the horizon: one
        env.step inside one scan (step k acts with the candidate when k is 0), so the program
        holds a single copy of the physics. `k` is never batched (vmap maps candidates and
        episodes, not the scan), so the cond stays a branch: the policy runs h - 1 times, as
        the cost report counts."""

        def step(carry, k):
            s, total, alive = carry
            a = jax.lax.cond(
                k == 0,
                lambda obs: action,
                lambda obs: deterministic_action(networks, params.normalizer, params.policy, obs),
                s.obs,
            )
            s = env.step(s, a)
            total = total + alive * discount**k * s.reward
            return (s, total, alive * (1.0 - s.done)), None

        carry = (state, jnp.zeros(()), jnp.ones(()))
        (state, total, alive), _ = jax.lax.scan(step, carry, jnp.arange(horizon))
        value = networks.value_network.apply(params.normalizer, params.value, state.obs)
        return total + alive * discount**horizon * value

    def best_of(params: SourceParams, state: State, obs, first: jax.Array, key, estimate):
        if samples == 1:
            return first
        dist = networks.parametric_action_distribution
        logits = networks.policy_network.apply(params.normalizer, params.policy, obs)
        raw = jax.vmap(lambda k: dist.sample_no_postprocessing(logits, k))(
            jax.random.split(key, samples - 1)
        )
        candidates = jnp.concatenate([first[None], dist.postprocess(raw)])
        state = lookahead_start(state, obs)
        score = lambda a: lookahead_score(params, state, a)  # noqa: E731
        if estimate is not None:  # plan under the adapter's model estimate (sysid_best_of_n)
            fields, gravity = model_of(estimate)
            score = lambda a: with_model(fields, gravity, lookahead_score, params, state, a)  # noqa: E731
        scores = jax.vmap(score)(candidates)
        return candidates[jnp.argmax(scores)]

    def run(
        params: SourceParams, shift_params: shift_lib.ShiftParams, adapter_state, key, view_arg=None
    ):
        start_state = adapter_state

        def view(state: State) -> State:
            return state if method_view is None else method_view(state, view_arg)

        fields, gravity = jax.vmap(model_of)(shift_params)
        if prepare is not None:  # maml: adapt on its own episodes first (the same keys below)
            batch = collect(
                params, adapter_state, shift_params, fields, gravity, jax.random.fold_in(key, 1)
            )
            adapter_state = jax.vmap(prepare, in_axes=(None, 0, 0))(params, adapter_state, batch)
        key_reset, key_steps = jax.random.split(key)
        state = jax.vmap(lambda f, g, k: with_model(f, g, env.reset, k))(
            fields, gravity, jax.random.split(key_reset, num_episodes)
        )
        state = jax.vmap(override)(state, shift_params)

        def step(carry, key):
            state, adapter_state, alive, sums = carry
            key_noise, key_act, key_best = jax.random.split(key, 3)
            obs = jax.vmap(corrupt)(
                state.obs, shift_params, jax.random.split(key_noise, num_episodes)
            )
            action, new_adapter = jax.vmap(adapter.act, in_axes=(None, 0, 0, 0))(
                params, adapter_state, obs, jax.random.split(key_act, num_episodes)
            )
            estimate = None
            if samples > 1 and model_estimate is not None:
                estimate = jax.vmap(model_estimate)(new_adapter)
            if samples > 1:
                action = jax.vmap(best_of, in_axes=(None, 0, 0, 0, 0, 0))(
                    params,
                    jax.vmap(view)(state),
                    obs,
                    action,
                    jax.random.split(key_best, num_episodes),
                    estimate,
                )
            state = jax.vmap(override)(state, shift_params)
            nxt = jax.vmap(lambda f, g, s, a: with_model(f, g, env.step, s, a))(
                fields, gravity, state, action
            )
            if observe is not None:  # adapters that learn from transitions (sysid)
                new_adapter = jax.vmap(
                    lambda a, before, act, after: observe(a, view(before), act, view(after))
                )(new_adapter, state, action, nxt)
            # A fallen episode is over: its adapter stops changing and nothing more is counted.
            adapter_state = jax.tree.map(
                lambda new, old: jnp.where(_expand(alive > 0, new), new, old),
                new_adapter,
                adapter_state,
            )
            velocity = velocity_report(nxt)
            sums = sums + alive[:, None] * jnp.stack(
                [nxt.reward, velocity[:, 0], velocity[:, 3]], axis=-1
            )
            fell = alive * nxt.done
            return (nxt, adapter_state, alive * (1.0 - nxt.done), sums), (alive, fell)

        (_, adapter_state, _, sums), (alive_steps, falls) = jax.lax.scan(
            step,
            (state, adapter_state, jnp.ones(num_episodes), jnp.zeros((num_episodes, 3))),
            jax.random.split(key_steps, episode_length),
        )
        steps = jnp.sum(alive_steps, axis=0)
        values = {
            "fell": jnp.sum(falls, axis=0),
            "steps_alive": steps,
            "return": sums[:, 0],
            "velocity_tracking_error": sums[:, 1] / jnp.maximum(steps, 1.0),
            "vx_tracking_error": sums[:, 2] / jnp.maximum(steps, 1.0),
        }
        if hasattr(adapter, "estimates"):
            values.update({f"estimate/{k}": v for k, v in adapter.estimates(adapter_state).items()})
        if hasattr(adapter, "diagnostics"):  # per episode: e.g. maml's inner-gradient norm
            values.update({f"diag/{k}": v for k, v in adapter.diagnostics(adapter_state).items()})
        if hasattr(adapter, "counters"):  # per episode, this run's: e.g. tent's resets
            start, end = adapter.counters(start_state), adapter.counters(adapter_state)
            values.update({f"count/{k}": end[k] - start[k] for k in end})
        return values, adapter_state

    return jax.jit(run)


def _expand(mask: jax.Array, like: jax.Array) -> jax.Array:
    return mask.reshape(mask.shape + (1,) * (like.ndim - mask.ndim))
