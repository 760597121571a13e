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
from pathlib import Path

import jax

from wildrobot.specs import TASK_ALIASES
from wildrobot.workers.training import checkpoint as ckpt
from wildrobot.workers.training.ppo import load_policy
from wildrobot.workers.training.rollout import evaluate_policy
from wildrobot.workers.training.trainer import make_base_env


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
