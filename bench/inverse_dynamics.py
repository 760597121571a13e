"""Inverse dynamics throughput: MJX batched vs native mj_inverse, plus the RPC's latency.

    .venv/bin/python bench/inverse_dynamics.py [--quick] [--num-trials 32] [--num-frames 1000]

MJX: `jit(vmap(make_inverse_fn(...)))` over num_trials x num_frames float32 frames (discrete
differences from qpos, foot wrenches subtracted), warm, best of `repeats`. vmap over trials
multiplies the scan's block width, so the batch uses `--block` frames per trial (default 8:
32 trials x 8 = 256 frames per scan step, the width a single trial gets by default). Native: a Python loop
of `mujoco.mj_inverse` over the same frames (qpos/qvel/qacc set per frame, same model options:
Euler, INVDISCRETE, constraints off), one core. compile_s: the first MJX call (trace + compile,
or a load from JAX's persistent cache unless --no-cache). RPC: one num_frames float32 trial
against a local front end (create_server on port 0, in a thread), warm, p50/p99 over `calls`.
`--smoke` (CI): 2 trials x 64 frames. The last stdout line is one JSON object with at least
JSON_KEYS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# The keys the last line always has (tests/test_bench_smoke.py checks them).
JSON_KEYS = (
    "mjx_frames_per_s", "native_frames_per_s", "ratio", "compile_s", "rpc_p50_ms", "rpc_p99_ms",
    "num_trials", "num_frames",
)  # fmt: skip
TOKEN = "bench-token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_redis(tmp: str) -> tuple[subprocess.Popen | None, str]:
    """A throwaway redis-server if one is installed (the RPC itself never touches Redis)."""
    port = _free_port()
    binary = shutil.which("redis-server")
    if binary is None:
        return None, f"redis://127.0.0.1:{port}/0"
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", tmp],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.3)
    return proc, f"redis://127.0.0.1:{port}/0"


def _serve(config, ready: threading.Event, box: dict) -> None:
    from wildrobot.server.app import create_server

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    box["server"], box["port"] = loop.run_until_complete(create_server(config))
    box["loop"] = loop
    ready.set()
    loop.run_forever()


def bench_rpc(trial, calls: int) -> tuple[float, float, float]:
    import grpc
    import numpy as np

    from wildrobot import arrays
    from wildrobot.server.config import ServerConfig
    from wildrobot.v1 import dynamics_pb2, dynamics_pb2_grpc

    with tempfile.TemporaryDirectory() as tmp:
        redis_proc, redis_url = _start_redis(tmp)
        config = ServerConfig(
            port=0,
            redis_url=redis_url,
            tokens={TOKEN: "bench"},
            artifact_dir=Path(tmp) / "artifacts",
            max_message_bytes=64 * 1024 * 1024,
            dashboard=False,
            dynamics_warm_buckets=(),  # the bench measures the first call's compile itself
        )
        ready, box = threading.Event(), {}
        threading.Thread(target=_serve, args=(config, ready, box), daemon=True).start()
        ready.wait(120)
        channel = grpc.insecure_channel(
            f"127.0.0.1:{box['port']}",
            options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
        )
        stub = dynamics_pb2_grpc.DynamicsServiceStub(channel)
        f32 = lambda x: arrays.to_proto(np.asarray(x, np.float32))  # noqa: E731
        request = dynamics_pb2.InverseDynamicsRequest(
            rate_hz=trial.rate_hz, qpos=f32(trial.qpos), grf=f32(trial.grf), cop=f32(trial.cop)
        )
        metadata = (("authorization", f"Bearer {TOKEN}"),)
        start = time.perf_counter()
        stub.InverseDynamics(request, metadata=metadata, timeout=600)
        first = time.perf_counter() - start
        latencies = []
        for _ in range(calls):
            start = time.perf_counter()
            stub.InverseDynamics(request, metadata=metadata, timeout=60)
            latencies.append(time.perf_counter() - start)
        channel.close()
        loop = box["loop"]
        asyncio.run_coroutine_threadsafe(box["server"].stop(0.5), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(10)
    ms = np.array(latencies) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-trials", type=int, default=32)
    parser.add_argument("--num-frames", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rpc-calls", type=int, default=100)
    parser.add_argument("--block", type=int, default=8, help="frames per trial per scan step")
    parser.add_argument("--quick", action="store_true", help="3 repeats, 30 RPC calls")
    parser.add_argument(
        "--smoke", action="store_true", help="seconds: 2 x 64 frames, 1 repeat, 3 RPC calls"
    )
    parser.add_argument("--no-cache", action="store_true", help="ignore JAX's compile cache")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.rpc_calls = 3, 30
    if args.smoke:
        args.num_trials, args.num_frames, args.repeats, args.rpc_calls = 2, 64, 1, 3
    if not args.no_cache:
        os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(REPO_ROOT / ".jax_cache"))
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "1")

    import jax
    import jax.numpy as jnp
    import mujoco
    import numpy as np

    from wildrobot.envs.dynamics import Config, Trial, generate, make_inverse_fn
    from wildrobot.envs.dynamics.wildrobot import dynamics_model

    model = dynamics_model()
    num_distinct = 4
    trials = [generate.simulate_trial(args.num_frames, seed=s) for s in range(num_distinct)]
    picks = [trials[i % num_distinct] for i in range(args.num_trials)]
    stack = lambda name: jnp.asarray(np.stack([getattr(t, name) for t in picks]), jnp.float32)  # noqa: E731
    batch = Trial(qpos=stack("qpos"), grf=stack("grf"), cop=stack("cop"))
    num = args.num_trials * args.num_frames

    fn = jax.jit(jax.vmap(make_inverse_fn(model, Config(block_size=args.block)), in_axes=(0, None)))
    start = time.perf_counter()
    jax.block_until_ready(fn(batch, trials[0].rate_hz))
    compile_s = time.perf_counter() - start
    best = float("inf")
    for _ in range(args.repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(batch, trials[0].rate_hz))
        best = min(best, time.perf_counter() - start)
    mjx_fps = num / best
    print(
        f"mjx: {num} frames in {best * 1e3:.1f} ms -> {mjx_fps:,.0f} frames/s "
        f"(first call {compile_s:.1f} s)"
    )

    m, d = model.mj_model, mujoco.MjData(model.mj_model)
    native = float("inf")
    for _ in range(max(1, args.repeats // 2)):
        start = time.perf_counter()
        for trial in picks:
            qpos, qvel, qacc = trial.qpos, trial.qvel, trial.qacc
            for t in range(args.num_frames):
                d.qpos[:] = qpos[t]
                d.qvel[:] = qvel[t]
                d.qacc[:] = qacc[t]
                mujoco.mj_inverse(m, d)
        native = min(native, time.perf_counter() - start)
    native_fps = num / native
    print(f"native mj_inverse loop: {native_fps:,.0f} frames/s")

    p50, p99, first = bench_rpc(trials[0], args.rpc_calls)
    print(
        f"rpc ({args.num_frames} frames, float32): p50 {p50:.1f} ms, p99 {p99:.1f} ms "
        f"(first call {first:.1f} s)"
    )
    print(
        json.dumps(
            {
                "mjx_frames_per_s": round(mjx_fps),
                "native_frames_per_s": round(native_fps),
                "ratio": round(mjx_fps / native_fps, 3),
                "compile_s": round(compile_s, 2),
                "rpc_p50_ms": round(p50, 2),
                "rpc_p99_ms": round(p99, 2),
                "num_trials": args.num_trials,
                "num_frames": args.num_frames,
                "block": args.block,
                "compile_cache": not args.no_cache,
                "cpu_count": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
