"""WildRobotWalk physics throughput on MJX vs native MuJoCo, on the same worlds, in one run.

    .venv/bin/python bench/env_throughput.py [--quick] [--num-envs 1024] [--num-steps 50]

MJX: N worlds reset with jax.vmap, then one jitted function scans `num_steps` control steps of
vmap(env.step) (zero actions: the home servo targets), each control step being the env's physics
substeps plus observation, rewards and bookkeeping. Native: `mujoco.rollout` over the same N
initial states with 2 threads, the same MjModel (timestep, options, sensors off) and
num_steps * substeps physics steps. ratio = MJX physics steps/s over native physics steps/s. `--smoke` (CI): 4 worlds, 2 steps.
The last stdout line is one JSON object with at least JSON_KEYS.

`--features` also prices the env's realism features (envs/wildrobot/realism.py): for each, the
same scan compiled with that feature's code replaced by the ideal robot's (FEATURES below), timed
alternately with the full env on the same worlds; `features` in the JSON gives each variant's
MJX control steps/s and the full env's cost over it (full time / variant time - 1).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# The keys the last line always has (tests/test_bench_smoke.py checks them).
JSON_KEYS = (
    "num_envs", "mjx_physics_steps_per_s", "native_physics_steps_per_s", "ratio", "compile_s",
    "backend",
)  # fmt: skip


# feature -> what stands in for its code while the variant is traced (the ideal robot's part).
FEATURES = {
    "action_delay": "realism.delayed_target returns this step's targets at every substep",
    "servo_backlash": "realism.backlash_ctrl returns the target (no dead band)",
    "imu_latency": "realism.lagged_imu returns this step's reading",
    "pushes": "realism.push_step returns no force and keeps the schedule",
    "episode_renewal": "WildRobotEnv._start_pending_episode returns info unchanged (no per-step "
    "fresh draws of the per-episode entries)",
}


@contextlib.contextmanager
def ideal(features: tuple[str, ...]):
    """Trace-time stand-ins for `features` (FEATURES); the env's own code is untouched."""
    import jax.numpy as jnp

    from wildrobot.envs.wildrobot import base, realism

    stand_ins = {
        "action_delay": (realism, "delayed_target", lambda targets, *_: targets[2]),
        "servo_backlash": (realism, "backlash_ctrl", lambda target, *_: target),
        "imu_latency": (realism, "lagged_imu", lambda imu, *_: imu),
        "pushes": (
            realism,
            "push_step",
            lambda push, info, rng: (
                jnp.zeros(3),
                {k: info[k] for k in ("push_timer", "push_start", "push_force")},
            ),
        ),
        "episode_renewal": (
            base.WildRobotEnv,
            "_start_pending_episode",
            lambda self, state, rng: dict(state.info),
        ),
    }
    saved = []
    try:
        for feature in features:
            owner, name, stand_in = stand_ins[feature]
            saved.append((owner, name, getattr(owner, name)))
            setattr(owner, name, stand_in)
        yield
    finally:
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)


def make_scan(env, num_envs: int, num_steps: int):
    """jit: state [num_envs] -> state after `num_steps` control steps of zero actions (a new
    function each call, so a variant traced under `ideal` compiles apart)."""
    import jax
    import jax.numpy as jnp

    @jax.jit
    def run(state):
        def body(state, _):
            return jax.vmap(env.step)(state, jnp.zeros((num_envs, env.action_size))), ()

        return jax.lax.scan(body, state, None, length=num_steps)[0]

    return run


def feature_costs(env, state, num_envs: int, num_steps: int, repeats: int) -> dict:
    """{variant: {control_steps_per_s, compile_s, full_cost_over_it}}: the full env and each
    feature replaced (and all of them), each compiled apart, timed alternately, best of repeats."""
    import jax

    variants = {"full": (), **{f"no_{f}": (f,) for f in FEATURES}, "none": tuple(FEATURES)}
    compiled, compile_s = {}, {}
    for variant, features in variants.items():
        with ideal(features):
            start = time.perf_counter()
            compiled[variant] = make_scan(env, num_envs, num_steps).lower(state).compile()
            compile_s[variant] = time.perf_counter() - start
        print(f"compiled {variant} in {compile_s[variant]:.1f} s", flush=True)
    times = {variant: [] for variant in variants}
    for _ in range(repeats):
        for variant, program in compiled.items():
            start = time.perf_counter()
            jax.block_until_ready(program(state))
            times[variant].append(time.perf_counter() - start)
    best = {variant: min(t) for variant, t in times.items()}
    return {
        variant: {
            "control_steps_per_s": round(num_envs * num_steps / best[variant]),
            "compile_s": round(compile_s[variant], 1),
            "full_cost_over_it": round(best["full"] / best[variant] - 1.0, 3),
        }
        for variant in variants
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, default=1024)
    parser.add_argument("--num-steps", type=int, default=50, help="control steps per world")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="native rollout threads")
    parser.add_argument("--quick", action="store_true", help="128 worlds, 20 steps, 1 repeat")
    parser.add_argument("--smoke", action="store_true", help="seconds: 4 worlds, 2 steps")
    parser.add_argument("--no-cache", action="store_true", help="ignore JAX's compile cache")
    parser.add_argument(
        "--features", action="store_true", help="also price each realism feature (FEATURES)"
    )
    args = parser.parse_args()
    if args.quick:
        args.num_envs, args.num_steps, args.repeats = 128, 20, 1
    if args.smoke:
        args.num_envs, args.num_steps, args.repeats = 4, 2, 1
    if not args.no_cache:
        os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(REPO_ROOT / ".jax_cache"))
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "1")

    import jax
    import mujoco
    import numpy as np
    from mujoco import rollout

    from wildrobot.envs import registry

    env = registry.make("WildRobotWalk")
    num_substeps = round(env.dt / env.mj_model.opt.timestep)
    num_physics_steps = args.num_envs * args.num_steps * num_substeps

    reset = jax.jit(jax.vmap(env.reset))

    run = make_scan(env, args.num_envs, args.num_steps)
    state = jax.block_until_ready(reset(jax.random.split(jax.random.PRNGKey(0), args.num_envs)))
    start = time.perf_counter()
    compiled = run.lower(state).compile()
    compile_s = time.perf_counter() - start
    model = env.mj_model
    data = [mujoco.MjData(model) for _ in range(args.threads)]
    full_physics = mujoco.mjtState.mjSTATE_FULLPHYSICS
    initial_state = np.empty((args.num_envs, mujoco.mj_stateSize(model, full_physics)))
    for world in range(args.num_envs):
        data[0].qpos[:] = np.asarray(state.pipeline_state.qpos[world])
        data[0].qvel[:] = np.asarray(state.pipeline_state.qvel[world])
        data[0].time = 0.0
        mujoco.mj_getState(model, data[0], initial_state[world], full_physics)
    control = np.asarray(state.pipeline_state.ctrl)[:, None, :]  # held for every step
    nstep = args.num_steps * num_substeps

    # Alternate the two, best of each: the CPU is shared, and a load change between two
    # back-to-back blocks would bias the ratio.
    mjx_times, native_times = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(state))
        mjx_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        rollout.rollout(model, data, initial_state, control, nstep=nstep, persistent_pool=True)
        native_times.append(time.perf_counter() - start)
    mjx_rate = num_physics_steps / min(mjx_times)
    native_rate = num_physics_steps / min(native_times)
    print(
        f"{args.num_envs} worlds x {nstep} physics steps: mjx best {min(mjx_times):.2f} s "
        f"(compile {compile_s:.1f} s), native ({args.threads} threads) best "
        f"{min(native_times):.2f} s",
        flush=True,
    )

    features = None
    if args.features:
        features = feature_costs(env, state, args.num_envs, args.num_steps, max(args.repeats, 3))
    print(
        json.dumps(
            {
                "num_envs": args.num_envs,
                "num_control_steps": args.num_steps,
                "num_substeps": num_substeps,
                "mjx_physics_steps_per_s": round(mjx_rate),
                "native_physics_steps_per_s": round(native_rate),
                "ratio": round(mjx_rate / native_rate, 3),
                "compile_s": round(compile_s, 1),
                "backend": jax.default_backend(),
                "threads": {"mjx": os.cpu_count(), "native": args.threads},
                "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
                **({"features": features, "feature_stand_ins": FEATURES} if features else {}),
            }
        )
    )


if __name__ == "__main__":
    main()
