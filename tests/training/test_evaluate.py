"""The rollout report script on a PointMass checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import pytest

from tests.training.tiny_runs import RecordingHooks, point_mass_spec
from wildrobot.envs.point_mass import PointMass
from wildrobot.workers.training import evaluate
from wildrobot.workers.training.ppo import train_ppo
from wildrobot.workers.training.rollout import evaluate_policy, make_evaluator


def test_evaluate_main_reports_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    result = train_ppo(point_mass_spec(1), tmp_path, RecordingHooks())

    assert evaluate.main([str(result.checkpoint_dir), "--num-envs", "8"]) == 0

    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["task"] == "PointMass" and report["num_envs"] == 8
    assert 0 < report["mean_episode_length"] <= 50
    assert 0.0 <= report["fall_rate"] <= 1.0


def test_evaluate_policy_counts_falls():
    # Full force to +x leaves the box (a fall) well before the 50-step limit; zero force stays.
    push = evaluate_policy(
        lambda obs, key: jax.numpy.ones((obs.shape[0], 2)),
        PointMass(),
        4,
        50,
        jax.random.PRNGKey(0),
    )
    rest = evaluate_policy(
        lambda obs, key: jax.numpy.zeros((obs.shape[0], 2)),
        PointMass(),
        4,
        50,
        jax.random.PRNGKey(0),
    )
    assert push["fall_rate"] == 1.0 and push["mean_episode_length"] < 50
    assert rest == {**rest, "fall_rate": 0.0, "mean_episode_length": 50.0}


def test_evaluator_compiles_once_and_takes_new_params():
    traces = []

    def policy_fn(params, obs, key):
        traces.append(1)  # runs only while tracing
        return jax.numpy.broadcast_to(params, (obs.shape[0], 2))

    evaluate = make_evaluator(policy_fn, PointMass(), 4, 50)
    push = evaluate(jax.numpy.ones(2), jax.random.PRNGKey(0))
    rest = evaluate(jax.numpy.zeros(2), jax.random.PRNGKey(1))
    assert len(traces) == 1
    assert push["fall_rate"] == 1.0 and rest["fall_rate"] == 0.0


def test_evaluate_policy_carries_a_recurrent_state():
    # A policy that counts steps in its state and pushes only from step 10: it falls, but only
    # after step 10, which it could not do if the state were not carried from step to step.
    def counting(obs, key, memory):
        memory = memory + 1.0
        push = jax.numpy.where(memory[:, :1] > 10, 1.0, 0.0)
        return jax.numpy.broadcast_to(push, (obs.shape[0], 2)), memory

    report = evaluate_policy(
        counting, PointMass(), 4, 50, jax.random.PRNGKey(0), policy_state=jax.numpy.zeros((4, 1))
    )
    assert report["fall_rate"] == 1.0 and 10 < report["mean_episode_length"] < 50


@pytest.mark.slow
def test_evaluate_main_reports_an_ssm_checkpoint(tmp_path: Path, capsys):
    spec = point_mass_spec(1, policy_arch="ssm", ssm_layers=1, ssm_state_size=4, ssm_width=8)
    result = train_ppo(spec, tmp_path, RecordingHooks())

    assert evaluate.main([str(result.checkpoint_dir), "--num-envs", "8"]) == 0

    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["num_envs"] == 8 and 0 < report["mean_episode_length"] <= 50
