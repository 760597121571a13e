"""Roll a trained policy out on a task and report what it does.

    python -m wildrobot.workers.training.evaluate CKPT [--task walk] [--num-envs 64]

Prints mean episode length, fall rate (episodes that terminated before the time limit) and, when
the env reports it, the velocity tracking error; the last line is one JSON object.

`compare_policies` rolls a trained policy out beside the zero-action policy (hold the home
pose) and a uniformly random one on fixed commands, in one compiled rollout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import jax
import jax.numpy as jnp

from wildrobot.specs import TASK_ALIASES

from . import checkpoint as ckpt
from .ppo import Policy, StatefulPolicy, load_policy
from .rollout import evaluate_policy, make_evaluator
from .trainer import make_base_env

BASELINES = ("trained", "zero_action", "random")


def compare_policies(
    checkpoint: Path,
    command_sets: dict[str, tuple[float, float, float]],
    num_envs: int,
    num_steps: int,
    seed: int = 0,
) -> dict[str, dict[str, dict[str, float]]]:
    """{policy: {command set: figures}} for the trained policy and the baselines.

    The checkpoint's task and env settings, on the unrandomized model, num_envs envs per
    command set for num_steps control steps each (commands never resampled). Figures: fall_rate,
    mean_episode_length, and for commanded tasks vx_tracking_error, velocity_tracking_error,
    forward_speed and yaw_rate (means over the steps each env was alive).
    """
    spec = ckpt.read_spec(checkpoint)
    overrides = dict(spec.env_overrides)
    if spec.task == "WildRobotWalk":
        overrides.update({"command.resample_steps": 100_000, "command.zero_probability": 0.0})
    env = make_base_env(spec.task, overrides)
    trained = load_policy(checkpoint)
    commands = jnp.repeat(jnp.asarray(list(command_sets.values())), num_envs, axis=0)
    total = commands.shape[0]

    def policy_fn(which, obs, key, memory):
        random = jax.random.uniform(key, (total, env.action_size), minval=-1.0, maxval=1.0)
        zero = jnp.zeros((total, env.action_size))
        memory, action = _act(trained, memory, obs)
        return jnp.select([which == 0, which == 1], [action, zero], random), memory

    evaluate = make_evaluator(policy_fn, env, total, num_steps, _initial_memory(trained, total))
    out: dict[str, dict[str, dict[str, float]]] = {}
    for index, policy in enumerate(BASELINES):
        values = evaluate(jnp.asarray(index), jax.random.PRNGKey(seed), commands)["values"]
        out[policy] = {}
        for position, name in enumerate(command_sets):
            rows = slice(position * num_envs, (position + 1) * num_envs)
            out[policy][name] = {
                "fall_rate": float(values["fell"][rows].mean()),
                "mean_episode_length": float(values["episode_length"][rows].mean()),
                **{
                    metric: float(values[metric][rows].mean())
                    for metric in (
                        "vx_tracking_error",
                        "velocity_tracking_error",
                        "forward_speed",
                        "yaw_rate",
                    )
                    if metric in values
                },
            }
    return out


def _act(policy: Policy, memory: jax.Array, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(memory, action): an SSM's step, or an MLP's action with the (dummy) memory unchanged."""
    if isinstance(policy, StatefulPolicy):
        return policy.step(memory, obs)
    return memory, policy(obs)


def _initial_memory(policy: Policy, num_envs: int) -> jax.Array:
    """What the rollout carries per env: an SSM's zero state, or a dummy for an MLP."""
    if isinstance(policy, StatefulPolicy):
        return policy.init_state((num_envs,))
    return jnp.zeros((num_envs, 1))


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

    def policy_fn(obs, key, memory):
        memory, action = _act(policy, memory, obs)
        return action, memory

    report = evaluate_policy(
        policy_fn,
        base_env,
        num_envs=args.num_envs,
        episode_length=args.episode_length or spec.episode_length,
        rng=jax.random.PRNGKey(args.seed),
        policy_state=_initial_memory(policy, args.num_envs),
    )
    report = {"checkpoint": str(args.checkpoint), "task": task, **report}
    for name, value in report.items():
        print(f"{name:>26}: {value}", file=sys.stderr)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
