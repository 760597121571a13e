"""Training throughput vs the env alone, on the same worlds, in one run.

    .venv/bin/python bench/train_throughput.py [--quick] [--num-envs 128]

Trains WildRobotWalk for a few iterations (rollout + PPO update, one compiled iteration) and, in
the same process, steps the same randomized worlds with a fixed policy (the initial network,
sampling actions as the first rollout does) for the same number of env steps.
ratio = train_env_steps_per_s / env_only_steps_per_s: how much of the env's speed training keeps
(target >= 0.7 on a 2-core CPU). Train and env-only calls alternate, so load from other
processes on a shared machine hits both alike. `--smoke` (CI): 8 worlds, 1 iteration. The last
stdout line is one JSON object with at least JSON_KEYS.

--policy ssm also trains an SSM policy (policy_arch=ssm, the spec's default SSM settings) on the
same worlds, its iterations alternating with the MLP's: ssm_over_mlp = SSM training env steps/s
over MLP training env steps/s (target >= 0.6).

--profile splits an iteration's time three ways from three programs timed alternately on the same
worlds: `env` (the wrapped env stepped with zero actions), `policy_in_rollout` (the env-only run
with the policy acting, less `env`) and `update` (the training iteration less the env-only run
with the policy: recording transitions, the normalizer update, GAE and the SGD epochs).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
from brax.training.agents.ppo import networks as ppo_networks

from wildrobot.specs import PpoSpec
from wildrobot.workers.training.metrics import to_host
from wildrobot.workers.training.state import TrainingState
from wildrobot.workers.training.trainer import Trainer, init_state, make_trainer

REPO_ROOT = Path(__file__).resolve().parent.parent
# The keys the last line always has (tests/test_bench_smoke.py checks them).
JSON_KEYS = ("train_env_steps_per_s", "env_only_steps_per_s", "ratio", "compile_s", "num_envs")


def make_env_only_fn(trainer: Trainer, state: TrainingState, policy_acts: bool = True):
    """pmapped: (env_state, key) -> env_state after one iteration's worth of env steps.

    Actions come from the policy with the fixed parameters of `state` (or, with `policy_acts`
    False, are zero: the env's own cost without the policy's forward pass).
    """
    spec = trainer.spec
    num_steps = spec.batch_size * spec.num_minibatches // spec.num_envs * spec.unroll_length
    make_policy = ppo_networks.make_inference_fn(trainer.networks)
    first = jax.tree.map(lambda x: x[0], state)
    policy = make_policy((first.normalizer, first.params.policy, first.params.value))

    def run(env_state, key):
        def step(state, key_step):
            if policy_acts:
                actions, _ = policy(state.obs, key_step)
            else:
                actions = jnp.zeros((state.obs.shape[0], trainer.env.action_size))
            return trainer.env.step(state, actions), ()

        return jax.lax.scan(step, env_state, jax.random.split(key, num_steps))[0]

    return jax.pmap(run, donate_argnums=0)


def _parse_sizes(text: str | None) -> tuple[int, ...] | None:
    return tuple(int(size) for size in text.split(",")) if text else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 timed iterations instead of 6")
    parser.add_argument("--smoke", action="store_true", help="seconds: 8 worlds, 1 iteration")
    parser.add_argument("--num-envs", type=int, default=128)
    parser.add_argument("--iterations", type=int, help="timed iterations (after one warm-up)")
    parser.add_argument(
        "--hidden-sizes",
        help="policy and value MLP sizes, e.g. 128,128 (default: the PpoSpec default)",
    )
    parser.add_argument(
        "--policy", choices=("mlp", "ssm"), default="mlp", help="ssm: also time an SSM policy"
    )
    parser.add_argument(
        "--profile", action="store_true", help="split an iteration into env, policy and update"
    )
    args = parser.parse_args()
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(REPO_ROOT / ".jax_cache"))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "1")
    iterations = args.iterations or (3 if args.quick else 6)
    if args.smoke:
        args.num_envs, iterations = 8, 1

    spec = PpoSpec(
        task="WildRobotWalk",
        num_envs=args.num_envs,
        batch_size=args.num_envs,
        num_minibatches=4,
        unroll_length=20,
        num_timesteps=10**9,
        **(
            {"policy_hidden_sizes": sizes, "value_hidden_sizes": sizes}
            if (sizes := _parse_sizes(args.hidden_sizes))
            else {}
        ),
    )
    trainer = make_trainer(spec)
    state = init_state(trainer)
    start = time.perf_counter()
    iteration_fn = trainer.iteration_fn.lower(state).compile()
    compile_s = time.perf_counter() - start

    env_only = make_env_only_fn(trainer, state)
    env_state = init_state(trainer).env_state
    keys = jax.random.split(jax.random.PRNGKey(1), trainer.num_devices)
    start = time.perf_counter()
    env_only = env_only.lower(env_state, keys).compile()
    env_compile_s = time.perf_counter() - start

    zero = None
    if args.profile:  # [program, env_state, seconds]
        start = time.perf_counter()
        program = make_env_only_fn(trainer, state, policy_acts=False)
        zero = [program.lower(env_state, keys).compile(), init_state(trainer).env_state, 0.0]
        zero_compile_s = time.perf_counter() - start

    ssm = None
    if args.policy == "ssm":  # same seed: the same randomized worlds
        ssm_trainer = make_trainer(spec.model_copy(update={"policy_arch": "ssm"}))
        ssm_state = init_state(ssm_trainer)
        start = time.perf_counter()
        ssm = [ssm_trainer.iteration_fn.lower(ssm_state).compile(), ssm_state, 0.0]
        ssm_compile_s = time.perf_counter() - start

    train_s = env_s = 0.0
    for round_index in range(iterations + 1):  # round 0 warms both up
        start = time.perf_counter()
        state, device_metrics = iteration_fn(state)
        to_host(device_metrics)  # blocks, as the training loop does
        elapsed_train = time.perf_counter() - start
        if ssm is not None:
            start = time.perf_counter()
            ssm[1], ssm_metrics = ssm[0](ssm[1])
            to_host(ssm_metrics)
            if round_index > 0:
                ssm[2] += time.perf_counter() - start
        if zero is not None:
            start = time.perf_counter()
            zero[1] = zero[0](zero[1], keys)
            jax.block_until_ready(zero[1].obs)
            if round_index > 0:
                zero[2] += time.perf_counter() - start
        start = time.perf_counter()
        env_state = env_only(env_state, keys)
        jax.block_until_ready(env_state.obs)
        elapsed_env = time.perf_counter() - start
        if round_index > 0:
            train_s, env_s = train_s + elapsed_train, env_s + elapsed_env

    steps = iterations * spec.env_steps_per_iteration
    train_sps, env_sps = steps / train_s, steps / env_s
    report = {
        "task": spec.task,
        "num_envs": spec.num_envs,
        "devices": trainer.num_devices,  # both sides: the same devices, one process
        "threads": os.cpu_count(),  # both sides: XLA's CPU pool spans every core
        "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
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
    if zero is not None:
        per_iteration = {
            "env": zero[2] / iterations,
            "policy_in_rollout": (env_s - zero[2]) / iterations,
            "update": (train_s - env_s) / iterations,
        }
        report.update(
            iteration_s=round(train_s / iterations, 3),
            profile_s={k: round(v, 3) for k, v in per_iteration.items()},
            profile_share={k: round(v * iterations / train_s, 3) for k, v in per_iteration.items()},
            zero_action_env_steps_per_s=round(steps / zero[2], 1),
            zero_action_compile_s=round(zero_compile_s, 1),
        )
    if ssm is not None:
        ssm_sps = steps / ssm[2]
        report.update(
            ssm_train_env_steps_per_s=round(ssm_sps, 1),
            ssm_over_mlp=round(ssm_sps / train_sps, 3),
            ssm_compile_s=round(ssm_compile_s, 1),
            ssm_settings={
                "layers": spec.ssm_layers,
                "state_size": spec.ssm_state_size,
                "width": spec.ssm_width,
            },
        )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
