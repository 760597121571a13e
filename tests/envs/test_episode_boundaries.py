"""Episode boundaries inside Brax's wrappers (episode, auto-reset, vmap, domain randomization).

Brax's AutoResetWrapper swaps the world's first pipeline state and observation back in after a
fall or a time limit, but not `info`. The first step of every auto-reset episode must then look
like the first step after a fresh `reset`: every reward term within the range it has there, and
the command the reward uses equal to the one the policy was shown.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from brax.envs.wrappers import training as env_wrappers

from wildrobot.envs import registry
from wildrobot.envs.wildrobot.base import observation_slice

NUM_WORLDS = 32
EPISODE_LENGTH = 40  # short, so that time limits end episodes as well as falls
NUM_STEPS = 100
FRESH_ROUNDS = 16  # fresh resets per world for the reference ranges
# Commands are resampled mid-episode, so a stale command would differ from the reset one.
OVERRIDES = {"WildRobotWalk": {"command.resample_steps": 10}, "WildRobotStand": {}}


@functools.cache
def _runs(task: str):
    env = registry.make(task, config_overrides=OVERRIDES[task])
    worlds = jax.random.split(jax.random.PRNGKey(3), NUM_WORLDS)
    wrapped = env_wrappers.wrap(
        env,
        episode_length=EPISODE_LENGTH,
        randomization_fn=functools.partial(env.randomization_fn(), rng=worlds),
    )
    command = observation_slice("command")

    def actions(key, shape):
        # Full-scale bang-bang actions, held for a world's whole rollout in most worlds: those
        # robots fall within a few dozen steps; the others (small actions) reach the time limit.
        key_sign, key_size = jax.random.split(key)
        size = jnp.where(jnp.arange(shape[0]) % 4 == 0, 0.1, 1.0)[:, None]
        return size * jnp.sign(jax.random.uniform(key_sign, shape, minval=-1.0, maxval=1.0))

    @jax.jit
    def rollout(key):
        key_reset, key_actions = jax.random.split(key)
        state = wrapped.reset(jax.random.split(key_reset, NUM_WORLDS))

        def body(state, key_step):
            new = wrapped.step(state, actions(key_step, (NUM_WORLDS, env.action_size)))
            record = {
                "after_reset": state.done,  # this step is the first of an auto-reset episode
                "terms": {k: v for k, v in new.metrics.items() if k.startswith("reward/")},
                "shown_command": state.obs[:, command],
                "rewarded_command": new.info["command"],
                "timer": new.info.get("command_timer", jnp.zeros(NUM_WORLDS, jnp.int32)),
                "done": new.done,
                "truncation": new.info["truncation"],
                "finite": jnp.all(jnp.isfinite(new.obs), axis=-1) & jnp.isfinite(new.reward),
            }
            return new, record

        # One action key for the whole rollout: each world holds its action.
        _, records = jax.lax.scan(
            body, state, jnp.broadcast_to(key_actions, (NUM_STEPS, *key_actions.shape))
        )
        return records

    @jax.jit
    def fresh_first_step(key):
        key_reset, key_action = jax.random.split(key)
        state = wrapped.reset(jax.random.split(key_reset, NUM_WORLDS))
        new = wrapped.step(state, actions(key_action, (NUM_WORLDS, env.action_size)))
        return {k: v for k, v in new.metrics.items() if k.startswith("reward/")}

    records = jax.device_get(rollout(jax.random.PRNGKey(0)))
    fresh = [
        jax.device_get(fresh_first_step(jax.random.PRNGKey(100 + i))) for i in range(FRESH_ROUNDS)
    ]
    fresh = {name: np.concatenate([f[name] for f in fresh]) for name in fresh[0]}
    return records, fresh


@pytest.mark.slow
@pytest.mark.parametrize("task", ["WildRobotStand", "WildRobotWalk"])
def test_first_step_after_auto_reset_is_like_a_fresh_start(task: str) -> None:
    records, fresh = _runs(task)
    after_reset = records["after_reset"].astype(bool)
    ended = records["done"].astype(bool)
    falls = ended & (records["truncation"] == 0)
    limits = ended & (records["truncation"] == 1)
    # Both kinds of boundary happened, many times.
    assert falls.sum() >= 10 and limits.sum() >= 10, (falls.sum(), limits.sum())
    assert after_reset.sum() >= 20
    assert records["finite"].all()

    for name, values in records["terms"].items():
        lo, hi = fresh[name].min(), fresh[name].max()
        # Sample extremes differ by chance; the defects this guards against are 10-1000x off.
        margin = 0.5 * (hi - lo) + 1e-4 * max(1.0, abs(lo), abs(hi))
        seen = values[after_reset]
        assert seen.min() >= lo - margin and seen.max() <= hi + margin, (
            f"{name}: first steps after auto-reset span [{seen.min():.4g}, {seen.max():.4g}], "
            f"fresh first steps [{lo:.4g}, {hi:.4g}]"
        )


@pytest.mark.slow
def test_walk_rewards_the_command_the_policy_was_shown() -> None:
    records, _ = _runs("WildRobotWalk")
    # Where the command was not resampled during the step, the reward's command is the one the
    # observation showed, on the first step of auto-reset episodes too.
    kept = records["timer"] != 0
    after_reset = records["after_reset"].astype(bool)
    np.testing.assert_array_equal(records["shown_command"][kept], records["rewarded_command"][kept])
    assert (kept & after_reset).sum() >= 20
    # Resampling did happen, so a command left over from the last episode would have shown.
    assert (~kept).sum() >= NUM_WORLDS


def _diverge_world_1(sys):
    """A randomization_fn for 4 worlds: world 1's joints have strongly negative damping, so its
    physics blows up to inf/NaN within a control step from a finite state."""
    damping = jnp.stack([sys.dof_damping] * 4).at[1, 6:].set(-1e7)
    in_axes = jax.tree.map(lambda _: None, sys).tree_replace({"dof_damping": 0})
    return sys.tree_replace({"dof_damping": damping}), in_axes


@pytest.mark.slow
def test_a_diverged_world_ends_its_episode_and_stays_finite() -> None:
    env = registry.make("WildRobotWalk")
    wrapped = env_wrappers.wrap(env, episode_length=1000, randomization_fn=_diverge_world_1)
    num_worlds = 4

    @jax.jit
    def run(key):
        state = wrapped.reset(jax.random.split(key, num_worlds))
        zeros = jnp.zeros((num_worlds, env.action_size))
        first = wrapped.step(state, zeros)
        second = wrapped.step(first, zeros)
        return state, first, second

    start, first, second = jax.device_get(run(jax.random.PRNGKey(0)))
    assert np.isfinite(start.obs).all()
    np.testing.assert_array_equal(first.done, [0.0, 1.0, 0.0, 0.0])
    assert first.info["truncation"][1] == 0.0  # a fall, not a time limit
    for state in (first, second):
        assert np.isfinite(state.obs).all() and np.isfinite(state.reward).all()
        assert all(np.isfinite(v).all() for v in state.metrics.values())
    weight = env.config.reward_weights.termination
    # The diverged world's reward is its termination penalty alone.
    assert first.reward[1] == pytest.approx(weight)
    np.testing.assert_allclose(first.metrics["reward/termination"], [0.0, weight, 0.0, 0.0])
    # It respawns and (with the same broken model) diverges again, still finite to the outside.
    assert second.done[1] == 1.0 and not second.done[[0, 2, 3]].any()
