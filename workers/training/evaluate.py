"""Roll a trained policy out on a task and report what it does.

    python -m wildrobot.workers.training.evaluate CKPT [--task walk] [--num-envs 64]

Prints mean episode length, fall rate (episodes that terminated before the time limit) and, when
the env reports it, the velocity tracking error; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
from brax.envs.base import Env
from brax.envs.wrappers import training as env_wrappers

from wildrobot.specs import TASK_ALIASES
from wildrobot.workers.training import checkpoint as ckpt
from wildrobot.workers.training.ppo import load_policy
from wildrobot.workers.training.trainer import make_base_env

# Env metrics that measure velocity tracking error, if the task has them (first found wins).
TRACKING_ERROR_METRICS = ("tracking_error/linear_velocity", "velocity_tracking_error")


def evaluate_policy(
    policy_fn: Callable[[jax.Array, jax.Array], jax.Array],
    base_env: Env,
    num_envs: int,
    episode_length: int,
    rng: jax.Array,
) -> dict[str, float]:
    """One episode per env (no auto-reset).

    policy_fn: (obs [num_envs, obs_dim], key) -> actions [num_envs, action_size]. Returns mean_episode_length, fall_rate
    and, when the env has one of TRACKING_ERROR_METRICS, velocity_tracking_error averaged over
    the steps each env was alive.
    """
    env = env_wrappers.EpisodeWrapper(env_wrappers.VmapWrapper(base_env), episode_length, 1)
    tracking_key = next((k for k in TRACKING_ERROR_METRICS if k in _metric_names(base_env)), None)

    def step(carry, key):
        state, alive, tracking_sum = carry
        state = env.step(state, policy_fn(state.obs, key))
        if tracking_key is not None:
            tracking_sum = tracking_sum + alive * state.metrics[tracking_key]
        fell = state.done * (1.0 - state.info["truncation"])
        return (state, alive * (1.0 - state.done), tracking_sum), (alive, alive * fell)

    @jax.jit
    def rollout(rng):
        key_reset, key_actions = jax.random.split(rng)
        state = env.reset(jax.random.split(key_reset, num_envs))
        alive = jnp.ones(num_envs)
        (_, _, tracking_sum), (alive_steps, falls) = jax.lax.scan(
            step,
            (state, alive, jnp.zeros(num_envs)),
            jax.random.split(key_actions, episode_length),
        )
        lengths = jnp.sum(alive_steps, axis=0)
        return lengths, jnp.sum(falls, axis=0), tracking_sum / jnp.maximum(lengths, 1.0)

    lengths, falls, tracking = jax.device_get(rollout(rng))
    report = {
        "num_envs": num_envs,
        "episode_length_limit": episode_length,
        "mean_episode_length": float(lengths.mean()),
        "fall_rate": float(falls.mean()),
    }
    if tracking_key is not None:
        report["velocity_tracking_error"] = float(tracking.mean())
    return report


def _metric_names(base_env: Env) -> set[str]:
    state = jax.eval_shape(base_env.reset, jax.random.PRNGKey(0))
    return set(state.metrics)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--task", help="task or alias (default: the checkpoint's task)")
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--episode-length", type=int, help="default: the checkpoint's")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(Path.cwd() / ".jax_cache"))

    spec = ckpt.read_spec(args.checkpoint)
    task = TASK_ALIASES.get(args.task, args.task) if args.task else spec.task
    base_env = make_base_env(task, spec.env_overrides)
    policy = load_policy(args.checkpoint)
    report = evaluate_policy(
        lambda obs, key: policy(obs),
        base_env,
        num_envs=args.num_envs,
        episode_length=args.episode_length or spec.episode_length,
        rng=jax.random.PRNGKey(args.seed),
    )
    report = {"checkpoint": str(args.checkpoint), "task": task, **report}
    for name, value in report.items():
        print(f"{name:>26}: {value}", file=sys.stderr)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
