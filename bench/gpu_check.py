"""One prepared run for a short GPU window: env, training, AMP, SSM and inverse dynamics figures.

    WILDROBOT_CUDA=1 scripts/setup                 # the only install (jax[cuda12], mujoco-warp)
    .venv/bin/python bench/gpu_check.py            # < 8 minutes on one H100 (the defaults)
    .venv/bin/python bench/gpu_check.py --smoke    # CPU, tiny sizes: that it runs (CI)

Sections, in this order; each records its own wall time, and one that fails records its error
and the run goes on (a GPU window is too short to lose every figure to one bug). A section that
would start after `--budget-s` is recorded as skipped.

  env_steps         WildRobotWalk env steps/s (control steps; zero actions) at each `--worlds`
                    count, for each physics backend `--impls` (jax, warp: `envs/wildrobot/
                    backend.py`; one that cannot run here says why), best of `--repeats`, and
                    the native reference on the same worlds: `mujoco.rollout` with one thread
                    per core of this machine (the same MjModel and substeps).
  inverse_dynamics  frames/s of jit(vmap(inverse dynamics)) over `--id-trials` x `--id-frames`
                    float32 frames, against a native `mj_inverse` loop (one core) on the same
                    frames (the figures of bench/inverse_dynamics.py).
  walk_gpu          the `walk-gpu` preset (`--num-envs` worlds): compile time, then env steps/s
                    over `--train-s` seconds of training iterations.
  amp_over_ppo      AMP's iteration against PPO's on the same spec (walk-gpu, `--motions`),
                    alternated, `--compare-iterations` each: ratio of env steps/s.
  ssm_over_mlp      the same for PpoSpec's policy_arch "ssm" against "mlp"; "unavailable"
                    while PpoSpec has no policy_arch.

peak_device_memory_bytes: the device's peak bytes in use over the run (None where the backend
keeps no such count, as on CPU). The last stdout line is one JSON object with at least JSON_KEYS.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
# The keys the last line always has (tests/test_bench_smoke.py checks them).
JSON_KEYS = (
    "platform", "device", "cpu_count", "env_steps", "inverse_dynamics", "walk_gpu",
    "amp_over_ppo", "ssm_over_mlp", "peak_device_memory_bytes", "wall_s", "args",
)  # fmt: skip
SECTIONS = ("env_steps", "inverse_dynamics", "walk_gpu", "amp_over_ppo", "ssm_over_mlp")


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny sizes (CI)")
    parser.add_argument("--worlds", type=_ints, default=(1024, 4096, 8192))
    parser.add_argument("--steps", type=int, default=100, help="control steps per world")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--impls", default="jax,warp", help="physics backends to measure")
    parser.add_argument("--native-threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--id-trials", type=int, default=32)
    parser.add_argument("--id-frames", type=int, default=1000)
    parser.add_argument("--num-envs", type=int, default=4096, help="walk-gpu's worlds")
    parser.add_argument("--train-s", type=float, default=180.0, help="walk-gpu training time")
    parser.add_argument("--compare-iterations", type=int, default=3, help="AMP/SSM, each side")
    parser.add_argument("--motions", default="walk_0.2")
    parser.add_argument("--budget-s", type=float, default=450.0, help="no section starts later")
    parser.add_argument("--sections", default=",".join(SECTIONS))
    args = parser.parse_args(argv)
    if args.smoke:
        args.worlds, args.steps, args.repeats, args.native_threads = (4,), 2, 1, 2
        args.id_trials, args.id_frames, args.num_envs, args.train_s = 2, 64, 8, 1.0
        args.compare_iterations, args.budget_s = 1, 3600.0
    unknown = set(args.sections.split(",")) - set(SECTIONS)
    if unknown:
        parser.error(f"--sections: unknown {sorted(unknown)} (known: {', '.join(SECTIONS)})")
    return args


# ---- env steps ----------------------------------------------------------------------------------


def env_steps(args: argparse.Namespace) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp

    from wildrobot.envs import registry
    from wildrobot.envs.wildrobot import backend

    out: dict[str, Any] = {"control_steps": args.steps, "native_threads": args.native_threads}
    native: dict[str, Any] = {}
    for impl in args.impls.split(","):
        reason = backend.unavailable(impl)
        if reason is not None:
            out[impl] = {"unavailable": reason}
            continue
        env = registry.make("WildRobotWalk", config_overrides={"impl": impl})
        substeps = round(env.dt / env.mj_model.opt.timestep)
        rows: dict[str, Any] = {}
        for worlds in args.worlds:
            reset = jax.jit(jax.vmap(env.reset))
            state = jax.block_until_ready(reset(jax.random.split(jax.random.PRNGKey(0), worlds)))

            def run(state, worlds=worlds, env=env):
                def body(state, _):
                    actions = jnp.zeros((worlds, env.action_size))
                    return jax.vmap(env.step)(state, actions), ()

                return jax.lax.scan(body, state, None, length=args.steps)[0]

            start = time.perf_counter()
            compiled = jax.jit(run).lower(state).compile()
            compile_s = time.perf_counter() - start
            best = min(
                _timed(lambda f=compiled, s=state: jax.block_until_ready(f(s)))
                for _ in range(args.repeats)
            )
            rows[str(worlds)] = {
                "env_steps_per_s": round(worlds * args.steps / best),
                "compile_s": round(compile_s, 1),
            }
            if str(worlds) not in native:
                native[str(worlds)] = _native_rate(env, state, worlds, args, substeps)
        out[impl] = rows
    out["native"] = native
    return out


def _native_rate(
    env: Any, state: Any, worlds: int, args: argparse.Namespace, substeps: int
) -> dict:
    """Env steps/s of mujoco.rollout over the same initial states, one thread per core."""
    import mujoco
    import numpy as np
    from mujoco import rollout

    model = env.mj_model
    data = [mujoco.MjData(model) for _ in range(args.native_threads)]
    full = mujoco.mjtState.mjSTATE_FULLPHYSICS
    initial = np.empty((worlds, mujoco.mj_stateSize(model, full)))
    qpos, qvel = np.asarray(state.pipeline_state.qpos), np.asarray(state.pipeline_state.qvel)
    for world in range(worlds):
        data[0].qpos[:], data[0].qvel[:], data[0].time = qpos[world], qvel[world], 0.0
        mujoco.mj_getState(model, data[0], initial[world], full)
    control = np.asarray(state.pipeline_state.ctrl)[:, None, :]
    nstep = args.steps * substeps
    best = min(
        _timed(
            lambda: rollout.rollout(
                model, data, initial, control, nstep=nstep, persistent_pool=True
            )
        )
        for _ in range(args.repeats)
    )
    return {"env_steps_per_s": round(worlds * args.steps / best), "threads": args.native_threads}


# ---- inverse dynamics ---------------------------------------------------------------------------


def inverse_dynamics(args: argparse.Namespace) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp
    import mujoco
    import numpy as np

    from wildrobot.envs.dynamics import Config, Trial, generate, make_inverse_fn
    from wildrobot.envs.dynamics.wildrobot import dynamics_model

    model = dynamics_model()
    distinct = [
        generate.simulate_trial(args.id_frames, seed=s) for s in range(min(4, args.id_trials))
    ]
    picks = [distinct[i % len(distinct)] for i in range(args.id_trials)]
    stack = lambda name: jnp.asarray(np.stack([getattr(t, name) for t in picks]), jnp.float32)  # noqa: E731
    batch = Trial(qpos=stack("qpos"), grf=stack("grf"), cop=stack("cop"))
    fn = jax.jit(jax.vmap(make_inverse_fn(model, Config(block_size=8)), in_axes=(0, None)))
    compile_s = _timed(lambda: jax.block_until_ready(fn(batch, distinct[0].rate_hz)))
    best = min(
        _timed(lambda: jax.block_until_ready(fn(batch, distinct[0].rate_hz)))
        for _ in range(max(args.repeats, 2))
    )
    m, d = model.mj_model, mujoco.MjData(model.mj_model)

    def native_loop() -> None:
        for trial in picks:
            for t in range(args.id_frames):
                d.qpos[:], d.qvel[:], d.qacc[:] = trial.qpos[t], trial.qvel[t], trial.qacc[t]
                mujoco.mj_inverse(m, d)

    native = _timed(native_loop)
    frames = args.id_trials * args.id_frames
    return {
        "frames": frames,
        "dtype": "float32",
        "mjx_frames_per_s": round(frames / best),
        "native_frames_per_s": round(frames / native),
        "native_threads": 1,
        "ratio": round(native / best, 2),
        "compile_s": round(compile_s, 1),
    }


# ---- training -----------------------------------------------------------------------------------


def walk_spec(args: argparse.Namespace, **fields: Any) -> dict[str, Any]:
    """The walk-gpu preset's fields at `--num-envs` worlds (tiny batches under --smoke)."""
    from wildrobot import presets

    base: dict[str, Any] = {"num_envs": args.num_envs}
    if args.smoke:
        base.update(batch_size=8, num_minibatches=2, unroll_length=4, num_updates_per_batch=1,
                    policy_hidden_sizes=(32, 32), value_hidden_sizes=(32, 32))  # fmt: skip
    return {**presets.apply_preset("walk-gpu", {**base, **fields}), "num_timesteps": 10**10}


def _compiled(trainer: Any) -> tuple[Any, Any, float]:
    from wildrobot.workers.training.trainer import init_state

    state = init_state(trainer)
    start = time.perf_counter()
    fn = trainer.iteration_fn.lower(state).compile()
    return fn, state, time.perf_counter() - start


def walk_gpu(args: argparse.Namespace, cache: dict[str, Any]) -> dict[str, Any]:
    from wildrobot.specs import PpoSpec
    from wildrobot.workers.training.metrics import to_host
    from wildrobot.workers.training.trainer import make_trainer

    spec = PpoSpec(**walk_spec(args))
    trainer = make_trainer(spec)
    fn, state, compile_s = _compiled(trainer)
    iterations, elapsed, first_s = 0, 0.0, None
    while elapsed < args.train_s or iterations < 2:
        start = time.perf_counter()
        state, metrics = fn(state)
        to_host(metrics)
        took = time.perf_counter() - start
        if first_s is None:
            first_s = took  # the first call's transfers and allocation: not in the rate
        else:
            iterations, elapsed = iterations + 1, elapsed + took
    cache["ppo"] = (trainer, fn, state)  # the PPO side of the comparisons below
    return {
        "num_envs": spec.num_envs,
        "devices": trainer.num_devices,
        "compile_s": round(compile_s, 1),
        "first_iteration_s": round(first_s, 2),
        "timed_iterations": iterations,
        "train_s": round(elapsed, 1),
        "env_steps_per_s": round(iterations * spec.env_steps_per_iteration / elapsed),
        "env_steps_per_iteration": spec.env_steps_per_iteration,
    }


def paired(args: argparse.Namespace, cache: dict[str, Any], other: Any, name: str) -> dict:
    """`name`'s trainer against the cached PPO one, iterations alternated, env steps/s each."""
    from wildrobot.workers.training.metrics import to_host

    if "ppo" not in cache:
        return {"unavailable": "needs the walk_gpu section's PPO trainer (run it first)"}
    base_trainer, base_fn, base_state = cache["ppo"]
    fn, state, compile_s = _compiled(other)
    states = {"base": base_state, name: state}
    fns = {"base": base_fn, name: fn}
    elapsed = {"base": 0.0, name: 0.0}
    for round_index in range(args.compare_iterations + 1):  # round 0 warms both up
        for side in ("base", name):
            start = time.perf_counter()
            states[side], metrics = fns[side](states[side])
            to_host(metrics)
            if round_index:
                elapsed[side] += time.perf_counter() - start
    cache["ppo"] = (base_trainer, base_fn, states["base"])
    steps = args.compare_iterations * base_trainer.spec.env_steps_per_iteration
    rates = {side: steps / seconds for side, seconds in elapsed.items()}
    return {
        "base_env_steps_per_s": round(rates["base"]),
        f"{name}_env_steps_per_s": round(rates[name]),
        "ratio": round(rates[name] / rates["base"], 3),
        f"{name}_compile_s": round(compile_s, 1),
        "iterations_each": args.compare_iterations,
    }


def amp_over_ppo(args: argparse.Namespace, cache: dict[str, Any]) -> dict[str, Any]:
    from wildrobot.specs import AmpSpec
    from wildrobot.workers.amp.reference import load_library
    from wildrobot.workers.amp.train import make_amp_trainer

    spec = AmpSpec(**walk_spec(args), motions=tuple(args.motions.split(",")))
    trainer = make_amp_trainer(spec, load_library(spec.motions).motions)
    return {"motions": list(spec.motions), **paired(args, cache, trainer, "amp")}


def ssm_over_mlp(args: argparse.Namespace, cache: dict[str, Any]) -> dict[str, Any]:
    from wildrobot.specs import PpoSpec
    from wildrobot.workers.training.trainer import make_trainer

    if "policy_arch" not in PpoSpec.model_fields:
        return {"unavailable": "PpoSpec has no policy_arch (the SSM policy is not merged yet)"}
    trainer = make_trainer(PpoSpec(**walk_spec(args, policy_arch="ssm")))
    return paired(args, cache, trainer, "ssm")


# ---- the run ------------------------------------------------------------------------------------


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def peak_memory() -> int | None:
    import jax

    stats = jax.devices()[0].memory_stats()
    return None if not stats else int(stats.get("peak_bytes_in_use", 0)) or None


def run(args: argparse.Namespace) -> dict[str, Any]:
    import jax

    begin = time.perf_counter()
    cache: dict[str, Any] = {}
    runners: dict[str, Callable[[], dict[str, Any]]] = {
        "env_steps": lambda: env_steps(args),
        "inverse_dynamics": lambda: inverse_dynamics(args),
        "walk_gpu": lambda: walk_gpu(args, cache),
        "amp_over_ppo": lambda: amp_over_ppo(args, cache),
        "ssm_over_mlp": lambda: ssm_over_mlp(args, cache),
    }
    chosen = args.sections.split(",")
    result: dict[str, Any] = {}
    for name in SECTIONS:
        if name not in chosen:
            result[name] = {"skipped": "not in --sections"}
            continue
        if time.perf_counter() - begin > args.budget_s:
            result[name] = {"skipped": f"--budget-s {args.budget_s:g} spent"}
            continue
        start = time.perf_counter()
        try:
            result[name] = runners[name]()
        except Exception as exc:  # noqa: BLE001 - one section's failure must not lose the rest
            traceback.print_exc()
            result[name] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        result[name]["section_s"] = round(time.perf_counter() - start, 1)
        print(f"[gpu_check] {name}: {json.dumps(result[name])}", flush=True)
    return {
        "platform": jax.default_backend(),
        "device": str(jax.devices()[0].device_kind),
        "devices": jax.local_device_count(),
        "cpu_count": os.cpu_count(),
        **result,
        "peak_device_memory_bytes": peak_memory(),
        "wall_s": round(time.perf_counter() - begin, 1),
        "args": {k: v for k, v in vars(args).items()},
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(REPO_ROOT / ".jax_cache"))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "1")
    if args.smoke:
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
    print(json.dumps(run(args), default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
