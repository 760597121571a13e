"""The WildRobot envs plug into Brax's training stack unchanged (wrappers, DR, ppo.train)."""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest
from brax.training.agents.ppo import networks as ppo_networks
from brax.training.agents.ppo import train as ppo

from wildrobot.envs import registry


@pytest.mark.slow
def test_ppo_train_smoke_with_domain_randomization() -> None:
    env = registry.make("WildRobotStand")
    progress: list[dict[str, float]] = []
    make_inference_fn, params, metrics = ppo.train(
        environment=env,
        num_timesteps=200,
        episode_length=20,
        num_envs=4,
        batch_size=4,
        num_minibatches=1,
        unroll_length=5,
        num_updates_per_batch=1,
        num_evals=2,
        num_eval_envs=4,
        normalize_observations=True,
        randomization_fn=env.randomization_fn(),
        network_factory=functools.partial(
            ppo_networks.make_ppo_networks,
            policy_hidden_layer_sizes=(16,),
            value_hidden_layer_sizes=(16,),
        ),
        progress_fn=lambda step, m: progress.append({k: float(v) for k, v in m.items()}),
        seed=0,
    )
    assert progress and np.isfinite(progress[-1]["eval/episode_reward"])
    assert "eval/episode_reward/tracking_lin_vel" in progress[-1]
    policy = make_inference_fn(params, deterministic=True)
    action, _ = policy(np.zeros(env.observation_size, np.float32), jax.random.PRNGKey(0))
    assert action.shape == (env.action_size,)
