"""AMP training throughput vs PPO training throughput, on the same worlds, in one run.

    .venv/bin/python bench/amp.py [--quick] [--num-envs 128] [--motions walk_0.2]

Builds a PPO trainer and an AMP trainer from the same PPO settings (AmpSpec is a PpoSpec plus
AMP's fields; same task, seed, env count, networks and batch shape, so both step the same
randomized worlds) and times their compiled iterations alternately, so load from other
processes on a shared machine hits both alike. AMP's iteration does everything PPO's does plus
the feature windows in the rollout, the style reward, the discriminator's updates and the
replay buffer. ratio = amp_env_steps_per_s / ppo_env_steps_per_s (target >= 0.8: the
discriminator costs less than 20%). `--smoke` (CI): 8 worlds, 1 iteration. The last stdout line
is one JSON object with at least JSON_KEYS.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import jax

from wildrobot.specs import AmpSpec, PpoSpec
from wildrobot.workers.amp.reference import load_library
from wildrobot.workers.amp.train import make_amp_trainer
from wildrobot.workers.training.metrics import to_host
from wildrobot.workers.training.trainer import init_state, make_trainer

REPO_ROOT = Path(__file__).resolve().parent.parent
# The keys the last line always has (tests/test_bench_smoke.py checks them).
JSON_KEYS = ("ppo_env_steps_per_s", "amp_env_steps_per_s", "ratio", "compile_s", "num_envs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 timed iterations instead of 6")
    parser.add_argument("--smoke", action="store_true", help="seconds: 8 worlds, 1 iteration")
    parser.add_argument("--num-envs", type=int, default=128)
    parser.add_argument("--iterations", type=int, help="timed iterations (after one warm-up)")
    parser.add_argument("--motions", default="walk_0.2", help="comma-separated clip names")
    args = parser.parse_args()
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(REPO_ROOT / ".jax_cache"))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "1")
    iterations = args.iterations or (3 if args.quick else 6)
    if args.smoke:
        args.num_envs, iterations = 8, 1

    ppo_fields = {
        "task": "WildRobotStand",
        "num_envs": args.num_envs,
        "batch_size": args.num_envs,
        "num_minibatches": 4,
        "unroll_length": 20,
        "num_timesteps": 10**9,
        "policy_hidden_sizes": (128, 128),
        "value_hidden_sizes": (128, 128),
    }
    ppo_spec = PpoSpec(**ppo_fields)
    amp_spec = AmpSpec(**ppo_fields, motions=tuple(args.motions.split(",")))
    motions = load_library(amp_spec.motions).motions
    trainers = {"ppo": make_trainer(ppo_spec), "amp": make_amp_trainer(amp_spec, motions)}
    states, fns, compile_s = {}, {}, {}
    for name, trainer in trainers.items():
        states[name] = init_state(trainer)
        start = time.perf_counter()
        fns[name] = trainer.iteration_fn.lower(states[name]).compile()
        compile_s[name] = time.perf_counter() - start

    elapsed = {"ppo": 0.0, "amp": 0.0}
    last_metrics = {}
    for round_index in range(iterations + 1):  # round 0 warms both up
        for name in ("ppo", "amp"):
            start = time.perf_counter()
            states[name], device_metrics = fns[name](states[name])
            last_metrics[name] = to_host(device_metrics)  # blocks, as the training loop does
            if round_index > 0:
                elapsed[name] += time.perf_counter() - start

    steps = iterations * ppo_spec.env_steps_per_iteration
    ppo_sps, amp_sps = steps / elapsed["ppo"], steps / elapsed["amp"]
    devices = trainers["ppo"].num_devices
    report = {
        "task": ppo_spec.task,
        "num_envs": ppo_spec.num_envs,
        "motions": list(amp_spec.motions),
        "platform": jax.default_backend(),
        "devices": {"ppo": devices, "amp": trainers["amp"].num_devices},
        "cpu_threads_available": os.cpu_count(),
        "env_steps_per_iteration": ppo_spec.env_steps_per_iteration,
        "timed_iterations": iterations,
        "disc_updates_per_iteration": amp_spec.disc_updates_per_iteration,
        "disc_batch_size": amp_spec.disc_batch_size,
        "disc_hidden_sizes": list(amp_spec.disc_hidden_sizes),
        "ppo_env_steps_per_s": round(ppo_sps, 1),
        "amp_env_steps_per_s": round(amp_sps, 1),
        "ratio": round(amp_sps / ppo_sps, 3),
        "compile_s": {name: round(value, 1) for name, value in compile_s.items()},
        "amp_disc_accuracy_ref": round(float(last_metrics["amp"]["amp/accuracy_ref"]), 3),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
