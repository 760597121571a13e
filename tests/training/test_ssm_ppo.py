"""Recurrent PPO with an SSM policy on PointMass: state resets at episode boundaries inside
Brax's wrappers, the loss recomputes what was acted, exact resume, load_policy's stateful form."""

from __future__ import annotations

import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.training.tiny_runs import RecordingHooks, point_mass_spec
from wildrobot.workers.training import checkpoint as ckpt
from wildrobot.workers.training import networks as net
from wildrobot.workers.training import recurrent
from wildrobot.workers.training.ppo import StatefulPolicy, load_policy, train_ppo
from wildrobot.workers.training.trainer import init_state, make_trainer

SSM = {"policy_arch": "ssm", "ssm_layers": 2, "ssm_state_size": 8, "ssm_width": 16}
# Short episodes (time limits) in a small box that a random policy often leaves (a "fall").
BOUNDARIES = {
    "episode_length": 12,
    "env_overrides": {"box_half_width": 1.0, "init_position_range": 0.9},
}


def ssm_spec(iterations: int, **overrides):
    return point_mass_spec(iterations, **{**SSM, **overrides})


@functools.cache
def _acted_segments():
    """Two consecutive 30-step segments acted by a fresh SSM policy in the wrapped env."""
    trainer = make_trainer(ssm_spec(1, **BOUNDARIES))
    state = jax.tree.map(lambda x: x[0], init_state(trainer))
    params = (state.normalizer, state.params.policy)

    @jax.jit
    def act(env_state, policy_state, key):
        return recurrent.unroll(
            trainer.env, env_state, policy_state, trainer.networks, params, key, 30,
            ("truncation",),
        )  # fmt: skip

    env_state, policy_state, first = act(state.env_state, state.policy_state, jax.random.key(1))
    _, _, second = act(env_state, policy_state, jax.random.key(2))
    return trainer, params, first, second


@pytest.mark.parametrize("segment", [0, 1])
def test_state_resets_at_time_limits_and_falls_and_the_loss_recomputes_the_acting(segment):
    trainer, (normalizer, policy_params), *segments = _acted_segments()
    data = segments[segment]
    policy = trainer.networks.policy_network
    done = np.asarray(1.0 - data.discount)  # [T, B]
    truncated = np.asarray(data.extras["state_extras"]["truncation"])
    assert (done * truncated).sum() > 0, "no time-limit reset in the segment"
    assert (done * (1 - truncated)).sum() > 0, "no fall (left the box) in the segment"
    initial = np.asarray(data.extras[recurrent.POLICY_STATE_KEY])
    if segment == 1:  # the second segment starts from a carried, non-zero state
        assert np.abs(initial).max() > 1e-3

    acted = np.asarray(data.extras["policy_extras"]["distribution_params"])
    resets = recurrent.segment_resets(data.discount)
    scanned, _ = policy.apply(normalizer, policy_params, data.observation, initial, resets)
    np.testing.assert_allclose(scanned, acted, rtol=1e-5, atol=1e-5)

    # Each episode's first step was acted from a zero state ...
    fresh, _ = policy.step(normalizer, policy_params, data.observation, jnp.zeros_like(
        jnp.broadcast_to(initial, data.observation.shape[:1] + initial.shape)))  # fmt: skip
    starts = np.asarray(resets) > 0
    np.testing.assert_allclose(np.asarray(fresh)[starts], acted[starts], rtol=1e-5, atol=1e-5)
    # ... which the state carried over would not give: the reset matters.
    unreset, _ = policy.apply(
        normalizer, policy_params, data.observation, initial, jnp.zeros_like(resets)
    )
    assert np.abs(np.asarray(unreset)[starts] - acted[starts]).max() > 1e-3


def _final_state(checkpoint_dir: Path):
    spec = ckpt.read_spec(checkpoint_dir)
    return ckpt.load_state(checkpoint_dir, init_state(make_trainer(spec)))


@pytest.mark.slow
def test_ssm_run_trains_resumes_exactly_and_loads_as_a_stateful_policy(tmp_path: Path):
    k = 2
    hooks = RecordingHooks()
    straight = train_ppo(ssm_spec(2 * k, checkpoint_every=100, eval_every=k, num_eval_envs=8),
                         tmp_path / "a", hooks)  # fmt: skip
    for _, metrics in hooks.metrics:
        for name in ("loss/total", "loss/policy", "policy/approx_kl", "episode/reward"):
            assert np.isfinite(metrics[name]), name
    assert "eval/mean_episode_length" in hooks.metrics[-1][1]

    first = train_ppo(ssm_spec(k, checkpoint_every=100, eval_every=k, num_eval_envs=8),
                      tmp_path / "b", RecordingHooks())  # fmt: skip
    resumed = train_ppo(
        ssm_spec(2 * k, checkpoint_every=100, eval_every=k, num_eval_envs=8),
        tmp_path / "b",
        RecordingHooks(),
        resume_from=first.checkpoint_dir,
    )
    expected, actual = _final_state(straight.checkpoint_dir), _final_state(resumed.checkpoint_dir)
    assert expected.policy_state.shape == (1, 32, 2, 8)
    assert np.abs(expected.policy_state).max() > 0  # the carried state is saved, not zeros
    jax.tree.map(np.testing.assert_array_equal, expected, actual)

    policy = load_policy(straight.checkpoint_dir)
    assert isinstance(policy, StatefulPolicy) and policy.state_shape == (2, 8)
    state = policy.init_state((3,))
    obs = jnp.ones((3, 6))
    state, first_action = policy.step(state, obs)
    _, second_action = policy.step(state, obs)
    assert first_action.shape == (3, 2) and np.all(np.abs(np.asarray(first_action)) <= 1)
    # Memory: the same observation gives a different action once the state has moved.
    assert np.abs(np.asarray(first_action) - np.asarray(second_action)).max() > 1e-6


def test_mlp_network_config_has_no_policy_state() -> None:
    config = net.make_network_config(point_mass_spec(1), 6, 2)
    assert not config.recurrent and config.policy_state_shape == ()
    # Old checkpoints' network_config.json (no SSM keys) still load as MLPs.
    raw = config.to_json().replace('"policy_arch": "mlp",', "")
    assert net.NetworkConfig.from_json(raw).policy_arch == "mlp"


def test_tta_eval_refuses_an_ssm_checkpoint_by_name(tmp_path: Path) -> None:
    from wildrobot.workers.tta.evaluate import load_source

    config = net.make_network_config(ssm_spec(1), 6, 2)
    (tmp_path / ckpt.NETWORK_CONFIG_FILE).write_text(config.to_json())
    with pytest.raises(ValueError, match="tta_eval does not take SSM policies yet"):
        load_source(tmp_path)
