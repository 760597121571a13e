"""Load benchmark of the job service: GetJob / ListJobs / SubmitJob(validate_only) and WatchJob.

Starts a private redis-server (AOF on) and `wildrobot-server` in their own processes, preloads
jobs, then runs concurrent asyncio clients for a fixed time, and finally holds many WatchJob
streams open at once and checks each one gets its snapshot and, after a cancel, its final event.
A reference measured in the same run: the gRPC health Check (no Redis, no auth) on the same server.

    .venv/bin/python bench/service_load.py --quick

    .venv/bin/python bench/service_load.py --smoke   # seconds: that it runs (CI)

Targets (2-core machine): GetJob >= 1000 req/s with p99 < 50 ms; 500 concurrent watch streams.
The bench sets the server limits it needs explicitly and reports them in its JSON: the dashboard
on a port the OS picks (`--http-port 0`: nothing else on the box can make the server fail to
start), `--max-watches-per-tenant` = `--watches` (all streams are one tenant's; the server's
default cap is 100 per tenant per front end), and no InverseDynamics warm-up compile
(`--dynamics-warm-buckets ""`), which would otherwise take the CPU during the timed phases. The last stdout line is one JSON object:
JSON_KEYS below, plus the per-phase p50s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from wildrobot.ops.stack import free_port, wait_for_port
from wildrobot.v1 import jobs_pb2, jobs_pb2_grpc

TOKEN = "bench-token"
METADATA = (("authorization", f"Bearer {TOKEN}"),)
# The keys the last line always has (tests/test_bench_smoke.py checks them).
JSON_KEYS = (
    "get_job_rps", "get_job_p99_ms", "get_job_alone_rps", "reference_health_rps", "list_jobs_rps",
    "submit_job_rps", "watch_streams", "watch_streams_ended_cancelled", "watch_open_all_s",
    "max_watches_per_tenant", "http_port", "get_job_target_met", "cpu_count",
)  # fmt: skip
SPEC = jobs_pb2.JobSpec(
    ppo=jobs_pb2.PpoSpec(task="PointMass", num_envs=4, batch_size=4, num_minibatches=2)
)


async def closed_loop(
    call: Callable[[], Awaitable[object]], concurrency: int, duration_s: float
) -> list[float]:
    """`concurrency` clients calling back to back for duration_s; returns latencies in seconds."""
    latencies: list[float] = []
    deadline = time.perf_counter() + duration_s

    async def client() -> None:
        while (start := time.perf_counter()) < deadline:
            await call()
            latencies.append(time.perf_counter() - start)

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies


async def paced(
    call: Callable[[], Awaitable[object]], rate: float, duration_s: float
) -> list[float]:
    """Open loop: starts a call every 1/rate s regardless of how long earlier ones take."""
    latencies: list[float] = []

    async def one() -> None:
        start = time.perf_counter()
        await call()
        latencies.append(time.perf_counter() - start)

    tasks = []
    begin = time.perf_counter()
    for i in range(int(rate * duration_s)):
        await asyncio.sleep(max(0.0, begin + i / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    return latencies


def summarize(name: str, latencies: list[float], duration_s: float) -> dict[str, float]:
    ms = np.asarray(latencies) * 1000
    return {
        f"{name}_rps": round(len(latencies) / duration_s, 1),
        f"{name}_p50_ms": round(float(np.percentile(ms, 50)), 2) if len(ms) else 0.0,
        f"{name}_p99_ms": round(float(np.percentile(ms, 99)), 2) if len(ms) else 0.0,
    }


async def preload(stub: jobs_pb2_grpc.JobServiceStub, count: int) -> list[str]:
    sem = asyncio.Semaphore(32)

    async def one(i: int) -> str:
        async with sem:
            request = jobs_pb2.SubmitJobRequest(
                spec=SPEC, request_id=f"preload-{i}", name=f"job {i}"
            )
            return (await stub.SubmitJob(request, metadata=METADATA)).job.job_id

    return await asyncio.gather(*(one(i) for i in range(count)))


async def load(address: str, args: argparse.Namespace) -> dict[str, float]:
    results: dict[str, float] = {}
    async with grpc.aio.insecure_channel(address) as channel:
        stub = jobs_pb2_grpc.JobServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        job_ids = await preload(stub, args.jobs)
        rng = np.random.default_rng(0)
        picks = iter(rng.integers(0, len(job_ids), size=10_000_000))

        async def get_job() -> None:
            await stub.GetJob(
                jobs_pb2.GetJobRequest(job_id=job_ids[next(picks)]), metadata=METADATA
            )

        async def list_jobs() -> None:
            await stub.ListJobs(jobs_pb2.ListJobsRequest(page_size=20), metadata=METADATA)

        async def submit_job() -> None:
            request = jobs_pb2.SubmitJobRequest(spec=SPEC, validate_only=True)
            await stub.SubmitJob(request, metadata=METADATA)

        async def health_check() -> None:
            await health.Check(health_pb2.HealthCheckRequest())

        await closed_loop(get_job, 4, 1.0)  # warm-up
        phase = args.duration / 2
        results.update(
            summarize(
                "reference_health", await closed_loop(health_check, args.concurrency, phase), phase
            )
        )
        # Capacity of each method alone (closed loop).
        results.update(
            summarize("get_job_alone", await closed_loop(get_job, args.concurrency, phase), phase)
        )
        results.update(summarize("list_jobs", await closed_loop(list_jobs, 4, phase), phase))
        results.update(summarize("submit_job", await closed_loop(submit_job, 4, phase), phase))
        # The mix, as a dashboard and a few CLIs would load it: GetJob closed loop while ListJobs
        # (page of 20) and SubmitJob(validate_only) arrive at a fixed rate each.
        mixed = await asyncio.gather(
            closed_loop(get_job, args.concurrency, args.duration),
            paced(list_jobs, args.paced_rps, args.duration),
            paced(submit_job, args.paced_rps, args.duration),
        )
        for name, latencies in zip(
            ("get_job", "list_jobs_mixed", "submit_job_mixed"), mixed, strict=True
        ):
            results.update(summarize(name, latencies, args.duration))
        results.update(await watch_streams(stub, job_ids, args.watches))
    return results


async def watch_streams(
    stub: jobs_pb2_grpc.JobServiceStub, job_ids: list[str], count: int
) -> dict[str, float]:
    """Opens `count` WatchJob streams, holds them, then cancels the jobs: each must end CANCELLED."""
    targets = [job_ids[i % len(job_ids)] for i in range(count)]
    snapshots = 0
    ended = 0
    all_open = asyncio.Event()

    async def watch(job_id: str) -> None:
        nonlocal snapshots, ended
        call = stub.WatchJob(jobs_pb2.WatchJobRequest(job_id=job_id), metadata=METADATA)
        async for event in call:
            if event.WhichOneof("event") == "snapshot":
                snapshots += 1
                if snapshots == count:
                    all_open.set()
            elif event.state.state == jobs_pb2.JOB_STATE_CANCELLED:
                ended += 1

    start = time.perf_counter()
    tasks = [asyncio.create_task(watch(job_id)) for job_id in targets]
    await asyncio.wait_for(all_open.wait(), 120)
    open_s = time.perf_counter() - start
    await asyncio.sleep(2.0)  # held open, idle
    held = sum(not t.done() for t in tasks)
    start = time.perf_counter()
    for job_id in sorted(set(targets)):
        await stub.CancelJob(jobs_pb2.CancelJobRequest(job_id=job_id), metadata=METADATA)
    await asyncio.wait_for(asyncio.gather(*tasks), 120)
    return {
        "watch_streams": held,
        "watch_streams_ended_cancelled": ended,
        "watch_open_all_s": round(open_s, 2),
        "watch_fanout_s": round(time.perf_counter() - start, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 s per phase")
    parser.add_argument("--smoke", action="store_true", help="seconds: 1 s phases, 10 streams")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--watches", type=int, default=500)
    parser.add_argument(
        "--paced-rps", type=float, default=20.0, help="ListJobs and SubmitJob rate in the mix"
    )
    parser.add_argument(
        "--max-watches-per-tenant",
        type=int,
        help="the server's watch cap (default: --watches; all the streams are one tenant's)",
    )
    args = parser.parse_args()
    if args.quick:
        args.duration, args.jobs = 5.0, 200
    if args.smoke:
        args.duration, args.jobs, args.watches = 1.0, 10, 10
    if args.max_watches_per_tenant is None:
        args.max_watches_per_tenant = args.watches
    work = Path(tempfile.mkdtemp(prefix="wildrobot-bench-"))
    redis_port, port = free_port(), free_port()
    procs: list[subprocess.Popen] = []
    try:
        redis = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(redis_port),
             "--bind", "127.0.0.1", "--dir", str(work), "--appendonly", "yes",
             "--appendfsync", "everysec", "--save", ""],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        procs.append(redis)
        wait_for_port(redis_port, redis, 20, "redis-server")
        server = subprocess.Popen(
            [sys.executable, "-m", "wildrobot.server.main", "--port", str(port),
             "--redis-url", f"redis://127.0.0.1:{redis_port}/0", "--tokens", f"{TOKEN}:bench",
             "--artifact-dir", str(work / "artifacts"), "--http-port", "0",
             "--max-watches-per-tenant", str(args.max_watches_per_tenant),
             "--dynamics-warm-buckets", ""],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        procs.append(server)
        wait_for_port(port, server, 60, "wildrobot-server")
        results = asyncio.run(load(f"127.0.0.1:{port}", args))
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        shutil.rmtree(work, ignore_errors=True)
    results.update(
        duration_s=args.duration,
        concurrency=args.concurrency,
        max_watches_per_tenant=args.max_watches_per_tenant,
        http_port="0 (the OS picks; the bench does not use the dashboard)",
        dynamics_warm_buckets="none (no background compile during the timed phases)",
        cpu_count=os.cpu_count() or 0,
        get_job_target_met=bool(results["get_job_rps"] >= 1000 and results["get_job_p99_ms"] < 50),
    )
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
