"""Training throughput vs the env alone, on the same worlds, in one run.

    .venv/bin/python bench/train_throughput.py [--quick] [--num-envs 128]

Trains WildRobotWalk for a few iterations (rollout + PPO update, one compiled iteration) and, in
the same process, steps the same randomized worlds with a fixed policy (zero actions) for the
same number of env steps. ratio = train_env_steps_per_s / env_only_steps_per_s: the share of
time the learner leaves to the env (target >= 0.7 on a 2-core CPU). The last stdout line is one
JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from wildrobot.specs import PpoSpec
from wildrobot.workers.training.metrics import to_host
from wildrobot.workers.training.trainer import Trainer, init_state, make_trainer

REPO_ROOT = Path(__file__).resolve().parent.parent


def make_env_only_fn(trainer: Trainer):
    """pmapped: env_state -> env_state after one iteration's worth of zero-action steps."""
    spec = trainer.spec
    num_steps = spec.batch_size * spec.num_minibatches // spec.num_envs * spec.unroll_length
    action_size = trainer.base_env.action_size

    def run(env_state):
        def step(state, _):
            actions = jnp.zeros((state.obs.shape[0], action_size))
            return trainer.env.step(state, actions), ()

        return jax.lax.scan(step, env_state, (), length=num_steps)[0]

    return jax.pmap(run, donate_argnums=0)


def time_calls(fn, state, num_calls: int, block) -> tuple[object, float]:
    start = time.perf_counter()
    for _ in range(num_calls):
        state = fn(state)
        block(state)
    return state, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 timed iterations instead of 5")
    parser.add_argument("--num-envs", type=int, default=128)
    parser.add_argument("--iterations", type=int, help="timed iterations (after one warm-up)")
    args = parser.parse_args()
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(REPO_ROOT / ".jax_cache"))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "1")
    iterations = args.iterations or (2 if args.quick else 5)

    spec = PpoSpec(
        task="WildRobotWalk",
        num_envs=args.num_envs,
        batch_size=args.num_envs,
        num_minibatches=4,
        unroll_length=20,
        num_timesteps=10**9,
    )
    trainer = make_trainer(spec)
    state = init_state(trainer)
    start = time.perf_counter()
    iteration_fn = trainer.iteration_fn.lower(state).compile()
    compile_s = time.perf_counter() - start

    metrics_box: dict[str, float] = {}

    def train_step(s):
        s, device_metrics = iteration_fn(s)
        metrics_box.update(to_host(device_metrics))  # blocks, as the training loop does
        return s

    state, _ = time_calls(train_step, state, 1, lambda s: None)  # warm-up
    state, train_s = time_calls(train_step, state, iterations, lambda s: None)

    env_only = make_env_only_fn(trainer)
    env_state = init_state(trainer).env_state
    start = time.perf_counter()
    env_only = env_only.lower(env_state).compile()
    env_compile_s = time.perf_counter() - start

    def block(s):
        jax.block_until_ready(s.obs)

    env_state, _ = time_calls(env_only, env_state, 1, block)
    env_state, env_s = time_calls(env_only, env_state, iterations, block)

    steps = iterations * spec.env_steps_per_iteration
    train_sps, env_sps = steps / train_s, steps / env_s
    report = {
        "task": spec.task,
        "num_envs": spec.num_envs,
        "devices": trainer.num_devices,
        "platform": jax.default_backend(),
        "env_steps_per_iteration": spec.env_steps_per_iteration,
        "timed_iterations": iterations,
        "train_env_steps_per_s": round(train_sps, 1),
        "env_only_steps_per_s": round(env_sps, 1),
        "ratio": round(train_sps / env_sps, 3),
        "compile_s": round(compile_s, 1),
        "env_only_compile_s": round(env_compile_s, 1),
        "policy_hidden_sizes": list(spec.policy_hidden_sizes),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
