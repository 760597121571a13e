"""Load benchmark of the dashboard: many SSE clients on running jobs plus jobs-table polling.

Starts a private redis-server and `wildrobot-server` (gRPC + the in-process dashboard) in their
own processes, submits `--jobs` jobs and has a writer process take them (real leases) and write
fenced metric events at `--rate` Hz per job, each stamped with the wall time it was sent. Then:

  1. reference: gRPC GetJob closed loop alone (the figure of bench/service_load.py), and the
     jobs table endpoint's capacity alone (closed loop);
  2. dashboard: `--sse-clients` Server-Sent Event streams spread over the jobs, while the table is
     polled as the open pages would (every `--poll-s` seconds each): event latency = receive time
     - send time, per event per client; missed events are counted;
  3. the same dashboard load plus the GetJob closed loop again: does gRPC hold up beside it?

Client roles run in separate processes (SSE clients; table pollers + gRPC loader; the metrics
writer) so the client side is not the bottleneck. The last stdout line is one JSON object.

    .venv/bin/python bench/dashboard_load.py --quick
    .venv/bin/python bench/dashboard_load.py --smoke   # seconds: that it runs (CI)

The bench sets the server limits it needs explicitly and reports them in its JSON: every SSE
client is the one bench tenant's, so `--max-watches-per-tenant` is `--sse-clients` (the server's
default cap, 100 per tenant per front end, would refuse the rest with 429); the Redis pool holds
a connection for every table poller besides the default 64 (`--redis-pool-size`: with 200 pages
polling on a loaded machine, requests waiting over 10 s for a pooled connection get 503); the
ports are free ones it picks; no InverseDynamics warm-up compile runs in the background. The last stdout line is
one JSON object with at least JSON_KEYS.

Target (2-core machine): 200 SSE clients with event latency p99 < 250 ms, and GetJob figures
unchanged within noise while the dashboard load runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from wildrobot.ops.stack import free_port, wait_for_port

TOKEN = "bench-token"
SENT = "bench/sent_ms"
# The keys the last line always has (tests/test_bench_smoke.py checks them).
JSON_KEYS = (
    "sse_clients", "event_latency_p99_ms", "sse_events_expected", "sse_events_received",
    "sse_open_all_s", "jobs_list_rps", "get_job_alone_rps", "get_job_with_dashboard_rps",
    "max_watches_per_tenant", "redis_pool_size", "layout", "target_met", "cpu_count",
)  # fmt: skip


def threads_of(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentiles(values: list[float], name: str) -> dict[str, float]:
    if not values:
        return {f"{name}_p50_ms": 0.0, f"{name}_p99_ms": 0.0, f"{name}_max_ms": 0.0}
    arr = np.asarray(values)
    return {
        f"{name}_p50_ms": round(float(np.percentile(arr, 50)), 2),
        f"{name}_p99_ms": round(float(np.percentile(arr, 99)), 2),
        f"{name}_max_ms": round(float(arr.max()), 2),
    }


# ---- a minimal HTTP/1.1 client (keep-alive GETs and one chunked event stream) -------------------


async def http_get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> bytes:
    writer.write(
        f"GET {path} HTTP/1.1\r\nhost: bench\r\nauthorization: Bearer {TOKEN}\r\n\r\n".encode()
    )
    status = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    body = await reader.readexactly(length)
    if b" 200 " not in status:
        raise RuntimeError(f"GET {path}: {status!r} {body[:200]!r}")
    return body


async def sse_client(
    port: int, job_id: str, latencies: list[tuple[float, float]], seen: dict, connected: Any
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    writer.write(
        f"GET /api/jobs/{job_id}/events?since=0 HTTP/1.1\r\nhost: bench\r\n"
        f"authorization: Bearer {TOKEN}\r\naccept: text/event-stream\r\n\r\n".encode()
    )
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(f"events {job_id}: {status!r}")
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    buffer = b""
    try:
        while True:
            size = int((await reader.readline()).strip() or b"0", 16)  # chunked encoding
            if size == 0:
                return
            buffer += await reader.readexactly(size)
            await reader.readexactly(2)
            while b"\n\n" in buffer:
                frame, buffer = buffer.split(b"\n\n", 1)
                kind, data = "", b""
                for line in frame.split(b"\n"):
                    if line.startswith(b"event: "):
                        kind = line[7:].decode()
                    elif line.startswith(b"data: "):
                        data = line[6:]
                if kind == "snapshot":
                    connected()
                elif kind == "metrics":
                    now = time.time() * 1000
                    values = json.loads(data)["values"]
                    latencies.append((values[SENT], now - values[SENT]))
                    seen[job_id] = seen.get(job_id, 0) + 1
    finally:
        writer.close()


def run_sse_clients(port: int, targets: list[str], ready: Any, stop: Any, out: Any) -> None:
    latencies: list[tuple[float, float]] = []
    per_client: list[dict] = [{} for _ in targets]

    async def main() -> None:
        opened = 0

        def connected() -> None:
            nonlocal opened
            opened += 1
            if opened == len(targets):
                ready.set()

        tasks = [
            asyncio.create_task(sse_client(port, job_id, latencies, per_client[i], connected))
            for i, job_id in enumerate(targets)
        ]
        while not stop.is_set():
            await asyncio.sleep(0.1)
            if not ready.is_set():  # a refused client (429: the watch cap) fails the run now
                for task in tasks:
                    if task.done() and task.exception():
                        raise task.exception()
        errors = [t.exception() for t in tasks if t.done() and t.exception()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if errors:
            raise errors[0]

    asyncio.run(main())
    received = [sum(c.values()) for c in per_client]
    out.put({"latencies": latencies, "received": received, "threads": threads_of()})


# ---- the metrics writer (a fake worker with real leases and fenced writes) ---------------------


def run_writer(
    redis_url: str, job_ids: list[str], rate: float, go: Any, stop: Any, out: Any
) -> None:
    from wildrobot.queue.client import QueueClient, connect

    queue = QueueClient(connect(redis_url))
    leases = []
    while len(leases) < len(job_ids):
        lease = queue.take(["ppo"], "bench-writer", lease_s=3600, block_ms=1000)
        if lease is not None:
            leases.append(lease)
    out.put({"taken": len(leases)})
    go.wait()
    written = {lease.job_id: 0 for lease in leases}
    step = 0
    start = time.perf_counter()
    tick = 0
    while not stop.is_set():
        tick += 1
        step += 1280
        for lease in leases:  # spread the jobs' writes over the tick
            queue.metrics(
                lease,
                step,
                {SENT: time.time() * 1000, "episode/reward": float(step % 97), "loss/total": 1.0},
                1.0,
                1000.0,
            )
            written[lease.job_id] += 1
            time.sleep(max(0.0, 1.0 / (rate * len(leases)) * 0.9))
        time.sleep(max(0.0, start + tick / rate - time.perf_counter()))
    out.put({"written": written, "threads": threads_of()})


# ---- table pollers and the gRPC GetJob loader ---------------------------------------------------


def run_loader(port: int, http_port: int, job_ids: list[str], plan: dict, out: Any) -> None:
    import grpc

    from wildrobot.v1 import jobs_pb2, jobs_pb2_grpc

    metadata = (("authorization", f"Bearer {TOKEN}"),)
    results: dict[str, Any] = {}

    async def get_job_loop(stub: Any, seconds: float, concurrency: int) -> list[float]:
        latencies: list[float] = []
        deadline = time.perf_counter() + seconds
        rng = np.random.default_rng(0)

        async def client() -> None:
            while (start := time.perf_counter()) < deadline:
                job_id = job_ids[int(rng.integers(len(job_ids)))]
                await stub.GetJob(jobs_pb2.GetJobRequest(job_id=job_id), metadata=metadata)
                latencies.append((time.perf_counter() - start) * 1000)

        await asyncio.gather(*(client() for _ in range(concurrency)))
        return latencies

    async def list_loop(seconds: float, concurrency: int, interval: float | None) -> list[float]:
        """Closed loop (interval None) or each poller every `interval` s, like an open page."""
        latencies: list[float] = []
        deadline = time.perf_counter() + seconds

        async def poller(offset: float) -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", http_port)
            await asyncio.sleep(offset)
            next_at = time.perf_counter()
            while (start := time.perf_counter()) < deadline:
                await http_get(reader, writer, "/api/jobs?page_size=50")
                latencies.append((time.perf_counter() - start) * 1000)
                if interval is not None:
                    next_at += interval
                    await asyncio.sleep(max(0.0, min(next_at, deadline) - time.perf_counter()))
            writer.close()

        spread = min(interval or 0.0, seconds)
        await asyncio.gather(*(poller(spread * i / concurrency) for i in range(concurrency)))
        return latencies

    async def main() -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = jobs_pb2_grpc.JobServiceStub(channel)
            d = plan["duration"]
            await get_job_loop(stub, 1.0, 4)  # warm-up
            alone = await get_job_loop(stub, d, plan["grpc_concurrency"])
            results["get_job_alone"] = (len(alone) / d, alone)
            cap = await list_loop(d / 2, 4, None)
            results["jobs_list_capacity"] = (len(cap) / (d / 2), cap)
            plan["reference_done"].set()
            plan["dashboard_on"].wait()
            polled = await list_loop(d, plan["pollers"], plan["poll_s"])
            results["jobs_list"] = (len(polled) / d, polled)
            both = await asyncio.gather(
                get_job_loop(stub, d, plan["grpc_concurrency"]),
                list_loop(d, plan["pollers"], plan["poll_s"]),
            )
            results["get_job_with_dashboard"] = (len(both[0]) / d, both[0])
            results["jobs_list_with_grpc"] = (len(both[1]) / d, both[1])

    asyncio.run(main())
    out.put({"loader": results, "threads": threads_of()})


# ---- the run ----------------------------------------------------------------------------------


def start_stack(
    work: Path, separate: bool, max_watches: int, pool_size: int
) -> tuple[list[subprocess.Popen], int, int, str]:
    """Redis, then the front end; with `separate`, one front end for gRPC (`--dashboard false`)
    and a second one, over the same Redis, serving only the dashboard's HTTP."""
    redis_port, port, http_port = free_port(), free_port(), free_port()
    procs: list[subprocess.Popen] = []
    redis = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(redis_port),
         "--bind", "127.0.0.1", "--dir", str(work), "--appendonly", "yes",
         "--appendfsync", "everysec", "--save", ""],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    procs.append(redis)
    wait_for_port(redis_port, redis, 20, "redis-server")
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    common = ["--redis-url", redis_url, "--tokens", f"{TOKEN}:bench",
              "--artifact-dir", str(work / "artifacts"),
              "--max-watches-per-tenant", str(max_watches), "--redis-pool-size", str(pool_size),
              "--dynamics-warm-buckets", ""]  # fmt: skip
    main_flags = ["--dashboard", "false"] if separate else ["--http-port", str(http_port)]
    server = subprocess.Popen(
        [sys.executable, "-m", "wildrobot.server.main", "--port", str(port), *main_flags, *common],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    procs.append(server)
    wait_for_port(port, server, 60, "wildrobot-server")
    if separate:
        dashboard = subprocess.Popen(
            [sys.executable, "-m", "wildrobot.server.main", "--port", str(free_port()),
             "--http-port", str(http_port), *common],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        procs.append(dashboard)
        wait_for_port(http_port, dashboard, 60, "the dashboard's front end")
    else:
        wait_for_port(http_port, server, 30, "the dashboard")
    return procs, port, http_port, redis_url


def submit_jobs(port: int, count: int) -> list[str]:
    import grpc

    from wildrobot.v1 import jobs_pb2, jobs_pb2_grpc

    spec = jobs_pb2.JobSpec(
        ppo=jobs_pb2.PpoSpec(task="PointMass", num_envs=4, batch_size=4, num_minibatches=2)
    )
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = jobs_pb2_grpc.JobServiceStub(channel)
        metadata = (("authorization", f"Bearer {TOKEN}"),)
        ids = []
        for i in range(count):
            request = jobs_pb2.SubmitJobRequest(spec=spec, name=f"bench {i}")
            ids.append(stub.SubmitJob(request, metadata=metadata).job.job_id)
        for i in range(50):  # finished jobs fill out the table
            request = jobs_pb2.SubmitJobRequest(spec=spec, name=f"done {i}")
            done = stub.SubmitJob(request, metadata=metadata).job.job_id
            stub.CancelJob(jobs_pb2.CancelJobRequest(job_id=done), metadata=metadata)
    return ids


def result_of(process: Any, queue: Any, timeout_s: float, what: str) -> Any:
    """What `process` puts on `queue`; RuntimeError as soon as it dies without (its traceback
    is on stderr) or after timeout_s."""
    import queue as queue_module

    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        try:
            return queue.get(timeout=0.5)
        except queue_module.Empty:
            if not process.is_alive():
                message = f"{what} failed (exit code {process.exitcode}; see stderr)"
                raise RuntimeError(message) from None
    raise RuntimeError(f"{what}: no result within {timeout_s:g} s")


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    separate = args.layout == "separate"
    pool_size = 64 + args.sse_clients  # one per table poller (as many as SSE clients) + default
    procs, port, http_port, redis_url = start_stack(
        work, separate, args.max_watches_per_tenant, pool_size
    )
    server_pids = [p.pid for p in procs[1:]]

    def server_cpu() -> float:
        return sum(cpu_seconds(pid) for pid in server_pids)

    children: list[Any] = []
    try:
        job_ids = submit_jobs(port, args.jobs)
        results_q = ctx.Queue()
        go, stop_writer, stop_sse, ready = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Event()
        writer = ctx.Process(
            target=run_writer, args=(redis_url, job_ids, args.rate, go, stop_writer, results_q)
        )
        writer.start()
        children.append(writer)
        assert results_q.get(timeout=60)["taken"] == len(job_ids)
        plan = {
            "duration": args.duration,
            "grpc_concurrency": args.grpc_concurrency,
            "pollers": args.sse_clients,
            "poll_s": args.poll_s,
            "reference_done": ctx.Event(),
            "dashboard_on": ctx.Event(),
        }
        loader_q = ctx.Queue()
        loader = ctx.Process(target=run_loader, args=(port, http_port, job_ids, plan, loader_q))
        loader.start()
        children.append(loader)
        cpu0 = server_cpu()
        plan["reference_done"].wait(600)
        cpu_reference = server_cpu() - cpu0
        targets = [job_ids[i % len(job_ids)] for i in range(args.sse_clients)]
        sse = ctx.Process(
            target=run_sse_clients, args=(http_port, targets, ready, stop_sse, results_q)
        )
        sse.start()
        children.append(sse)
        opened = time.perf_counter()
        while not ready.wait(0.5):
            if not sse.is_alive():
                raise RuntimeError(f"the SSE clients failed (exit code {sse.exitcode}; see stderr)")
            if time.perf_counter() - opened > 120:
                raise RuntimeError("not every SSE client got its snapshot within 120 s")
        open_s = time.perf_counter() - opened
        server_threads_open = [threads_of(pid) for pid in server_pids]
        cpu1 = server_cpu()
        go.set()
        phase1_start_ms = time.time() * 1000
        plan["dashboard_on"].set()
        time.sleep(args.duration)
        phase2_start_ms = time.time() * 1000
        cpu2 = server_cpu()
        loaded = result_of(loader, loader_q, args.duration * 4 + 120, "the pollers and gRPC loader")
        cpu3 = server_cpu()
        phase2_end_ms = time.time() * 1000
        stop_writer.set()
        written = results_q.get(timeout=60)
        time.sleep(1.0)  # the last events reach the clients
        stop_sse.set()
        streamed = results_q.get(timeout=60)
        if "written" not in written:
            written, streamed = streamed, written
    finally:
        for child in children:
            child.join(30)
            if child.is_alive():
                child.kill()
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)

    if args.dump:
        rows = [(sent - phase1_start_ms, lat) for sent, lat in streamed["latencies"]]
        Path(args.dump).write_text("\n".join(f"{t:.1f} {lat:.2f}" for t, lat in rows))
    phase1 = [
        lat for sent, lat in streamed["latencies"] if phase1_start_ms <= sent < phase2_start_ms
    ]
    phase2 = [lat for sent, lat in streamed["latencies"] if phase2_start_ms <= sent < phase2_end_ms]
    expected = sum(written["written"][job_id] for job_id in targets)
    lo = loaded["loader"]
    result: dict[str, Any] = {
        "sse_clients": args.sse_clients,
        "jobs": args.jobs,
        "events_per_s": round(args.rate * args.jobs, 1),
        "sse_frames_per_s": round(args.rate * args.sse_clients, 1),
        **percentiles(phase1, "event_latency"),
        **percentiles(phase2, "event_latency_with_grpc_load"),
        "sse_events_expected": expected,
        "sse_events_received": sum(streamed["received"]),
        "sse_open_all_s": round(open_s, 2),
        "jobs_list_rps": round(lo["jobs_list"][0], 1),
        **percentiles(lo["jobs_list"][1], "jobs_list"),
        "jobs_list_capacity_rps": round(lo["jobs_list_capacity"][0], 1),
        **percentiles(lo["jobs_list_capacity"][1], "jobs_list_capacity"),
        "get_job_alone_rps": round(lo["get_job_alone"][0], 1),
        **percentiles(lo["get_job_alone"][1], "get_job_alone"),
        "get_job_with_dashboard_rps": round(lo["get_job_with_dashboard"][0], 1),
        **percentiles(lo["get_job_with_dashboard"][1], "get_job_with_dashboard"),
        "server_cpu_reference_s": round(cpu_reference, 2),
        "server_cpu_dashboard_pct": round(100 * (cpu2 - cpu1) / args.duration, 1),
        "server_cpu_dashboard_plus_grpc_pct": round(100 * (cpu3 - cpu2) / args.duration, 1),
        "layout": args.layout,
        "max_watches_per_tenant": args.max_watches_per_tenant,
        "redis_pool_size": pool_size,
        "dynamics_warm_buckets": "none",
        "server_processes": len(server_pids),
        "server_threads": server_threads_open,
        "redis_processes": 1,
        "client_processes": 3,
        "client_threads": {
            "sse": streamed["threads"],
            "writer": written["threads"],
            "pollers_and_grpc": loaded["threads"],
        },
        "duration_s": args.duration,
        "poll_s": args.poll_s,
        "cpu_count": os.cpu_count() or 0,
    }
    result["target_met"] = bool(
        args.sse_clients >= 200
        and result["event_latency_p99_ms"] < 250
        and result["sse_events_received"] >= result["sse_events_expected"]
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 s per phase")
    parser.add_argument(
        "--smoke", action="store_true", help="seconds: 2 s phases, 10 clients on 2 jobs"
    )
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per phase")
    parser.add_argument("--sse-clients", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=10, help="running jobs the clients watch")
    parser.add_argument("--rate", type=float, default=2.0, help="metric events/s per job")
    parser.add_argument("--poll-s", type=float, default=3.0, help="table refresh of each page")
    parser.add_argument("--grpc-concurrency", type=int, default=16)
    parser.add_argument("--dump", help="write 'ms since phase 1, latency ms' per event here")
    parser.add_argument(
        "--layout",
        choices=("in-process", "separate"),
        default="in-process",
        help="dashboard in the gRPC front end, or in a second front end beside it",
    )
    parser.add_argument(
        "--max-watches-per-tenant",
        type=int,
        help="the server's watch cap (default: --sse-clients; all clients are one tenant's)",
    )
    args = parser.parse_args()
    if args.quick:
        args.duration = 10.0
    if args.smoke:
        args.duration, args.sse_clients, args.jobs, args.poll_s = 2.0, 10, 2, 1.0
    if args.max_watches_per_tenant is None:
        args.max_watches_per_tenant = args.sse_clients
    work = Path(tempfile.mkdtemp(prefix="wildrobot-dashboard-bench-"))
    try:
        result = run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
