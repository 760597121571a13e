"""Chaos soak of the job service: small PPO jobs on 2-3 workers while workers are SIGKILLed and
SIGSTOPped/SIGCONTed and Redis restarts, then a check that nothing was lost or done twice.

Starts a private redis-server (AOF on, appendfsync always, on a free port), `wildrobot-server`
and N `wildrobot-worker`s, each in its own process group. Submits M tiny PointMass PPO jobs (3
iterations, a checkpoint after each: the whole path of take, lease, metrics, fenced checkpoint
registration, resume, finish) with request ids (a submit that fails during a Redis restart is
retried with the same id; a job counts as acknowledged once SubmitJob answered). For a bounded
time it injects faults at random:

    kill_worker      SIGKILL a worker's whole process group (supervisor and runner), restart it
    kill_supervisor  SIGKILL only the supervisor: its runner lives on as a stale attempt
    stop_worker      SIGSTOP a worker's group for 1-8 s (longer than the lease: its attempt goes
                     stale while frozen, then wakes and tries to write), then SIGCONT
    restart_redis    SIGTERM or SIGKILL redis-server, start it again on the same port

then lets the jobs drain and checks, from Redis and the artifact directory:

    lost        acknowledged jobs with no record, or whose events have a gap (seq not 1..last)
    duplicated  jobs with more than one terminal event or an event after it, or a request id
                that produced two jobs
    corrupt     registered checkpoints that do not load (meta, spec, orbax policy tree), or whose
                step differs from the one registered
    stuck       acknowledged jobs not in a terminal state when the drain time is up

    .venv/bin/python bench/chaos.py --quick     # <= 10 minutes on the 2-core machine
    .venv/bin/python bench/chaos.py --jobs 3 --faults 5 --workers 2   # a minimal round
    .venv/bin/python bench/chaos.py --smoke     # 1 job, 1 worker, 1 fault: that it runs (CI)

Target: lost = duplicated = corrupt = stuck = 0 with at least 50 faults injected. The last stdout
line is one JSON object with at least JSON_KEYS.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import redis

from wildrobot.ops.stack import RedisServer, free_port, wait_for_port
from wildrobot.v1 import jobs_pb2, jobs_pb2_grpc

# The keys the last line always has (tests/test_bench_smoke.py checks them).
JSON_KEYS = ("jobs", "faults_injected", "lost", "duplicated", "corrupt", "stuck", "duration_s")
TOKEN = "chaos-token"
TENANT = "chaos"
METADATA = (("authorization", f"Bearer {TOKEN}"),)
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}
LEASE_S = 4.0
HEARTBEAT_S = 1.0
MAX_RETRIES = 100  # lost leases are the point here: jobs should survive them all
ITERATIONS = 3
STEPS_PER_ITERATION = 1280


def job_spec() -> jobs_pb2.JobSpec:
    spec = jobs_pb2.PpoSpec(
        task="PointMass",
        num_envs=32,
        batch_size=32,
        num_minibatches=4,
        unroll_length=10,
        num_updates_per_batch=2,
        episode_length=50,
        num_timesteps=ITERATIONS * STEPS_PER_ITERATION,
        checkpoint_every=1,
        export_onnx=False,
    )
    spec.policy_hidden_sizes.extend([16, 16])
    spec.value_hidden_sizes.extend([16, 16])
    return jobs_pb2.JobSpec(ppo=spec)


def log(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Worker:
    index: int
    generation: int = 0
    proc: subprocess.Popen[bytes] | None = None
    stopped_until: float = 0.0
    restart_at: float = 0.0
    old_groups: list[int] = field(default_factory=list)


class Cluster:
    def __init__(self, root: Path, num_workers: int) -> None:
        self.root = root
        self.artifacts = root / "artifacts"
        self.artifacts.mkdir()
        try:
            self.redis = RedisServer(root / "redis")
        except RuntimeError as exc:
            raise SystemExit(str(exc)) from None
        self.redis.data_dir.mkdir()
        self.port = free_port()
        self.server: subprocess.Popen[bytes] | None = None
        self.workers = [Worker(i) for i in range(num_workers)]
        self.env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1")

    def start(self) -> None:
        self.redis.start()
        self.server = subprocess.Popen(
            [sys.executable, "-m", "wildrobot.server.main", "--port", str(self.port),
             "--redis-url", self.redis.url, "--artifact-dir", str(self.artifacts),
             "--dashboard", "false", "--reaper-interval-s", "0.5", "--orphan-after-s", "5",
             "--max-retries", str(MAX_RETRIES)],
            env=dict(self.env, WILDROBOT_TOKENS=f"{TOKEN}:{TENANT}"),
            stdout=(self.root / "server.log").open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for_port(self.port, self.server, 60, "wildrobot-server")
        for worker in self.workers:
            self.start_worker(worker)

    def start_worker(self, worker: Worker) -> None:
        worker.generation += 1
        name = f"w{worker.index}-{worker.generation}"
        worker.proc = subprocess.Popen(
            [sys.executable, "-m", "wildrobot.workers.main", "--redis-url", self.redis.url,
             "--artifact-dir", str(self.artifacts), "--lease-s", str(LEASE_S),
             "--heartbeat-s", str(HEARTBEAT_S), "--poll-ms", "200", "--worker-id", name,
             "--max-retries", str(MAX_RETRIES), "--stop-grace-s", "30"],
            env=self.env, stdout=(self.root / f"{name}.log").open("wb"),
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        worker.stopped_until = 0.0
        worker.restart_at = 0.0

    def tick(self) -> None:
        """Resumes frozen workers and restarts killed ones when their time comes."""
        now = time.monotonic()
        for worker in self.workers:
            if worker.stopped_until and now >= worker.stopped_until and worker.proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(worker.proc.pid, signal.SIGCONT)
                worker.stopped_until = 0.0
            if worker.restart_at and now >= worker.restart_at:
                self.start_worker(worker)

    def live_workers(self) -> list[Worker]:
        return [w for w in self.workers if w.proc is not None and not w.restart_at]

    def stop(self) -> None:
        for worker in self.workers:
            groups = list(worker.old_groups)
            if worker.proc is not None:
                groups.append(worker.proc.pid)
            for group in groups:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(group, signal.SIGCONT)
                    os.killpg(group, signal.SIGKILL)
            if worker.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    worker.proc.wait(10)
        if self.server is not None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(20)
            except subprocess.TimeoutExpired:
                self.server.kill()
        with contextlib.suppress(Exception):
            self.redis.stop()


class Faults:
    def __init__(self, cluster: Cluster, rng: random.Random) -> None:
        self.cluster = cluster
        self.rng = rng
        self.counts: dict[str, int] = {}

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def inject(self) -> None:
        kind = self.rng.choices(
            ["kill_worker", "kill_supervisor", "stop_worker", "restart_redis"],
            weights=[30, 15, 35, 20],
        )[0]
        candidates = [w for w in self.cluster.live_workers() if not w.stopped_until]
        if kind != "restart_redis" and not candidates:
            kind = "restart_redis"
        if kind == "restart_redis":
            sig = self.rng.choice([signal.SIGTERM, signal.SIGKILL])
            self.cluster.redis.stop(sig)
            time.sleep(self.rng.uniform(0.3, 2.0))
            self.cluster.redis.start()
            detail = signal.Signals(sig).name
        else:
            worker = self.rng.choice(candidates)
            assert worker.proc is not None
            pid = worker.proc.pid
            detail = f"w{worker.index}-{worker.generation}"
            if kind == "stop_worker":
                os.killpg(pid, signal.SIGSTOP)
                worker.stopped_until = time.monotonic() + self.rng.uniform(1.0, 8.0)
            else:
                if kind == "kill_worker":
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(pid, signal.SIGKILL)
                else:  # the runner (same group) lives on, orphaned: a stale attempt
                    worker.proc.kill()
                    worker.old_groups.append(pid)
                worker.proc.wait(10)
                worker.restart_at = time.monotonic() + self.rng.uniform(0.5, 3.0)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        log(f"fault {self.total}: {kind} {detail}")


def submit(stub: jobs_pb2_grpc.JobServiceStub, index: int, timeout_s: float = 120) -> str | None:
    """SubmitJob with a request id, retried until acknowledged; None if it never was."""
    request = jobs_pb2.SubmitJobRequest(
        spec=job_spec(), request_id=f"chaos-{index}", name=f"chaos {index}"
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            return stub.SubmitJob(request, metadata=METADATA, timeout=10).job.job_id
        except grpc.RpcError as exc:
            if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise
            time.sleep(0.5)
    return None


def job_states(client: redis.Redis, job_ids: list[str]) -> dict[str, str | None]:
    pipe = client.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hget(f"wr:job:{job_id}", "state")
    return dict(zip(job_ids, pipe.execute(), strict=True))


def load_checkpoint(path: Path, step: int) -> str | None:
    """None when the checkpoint loads; else what is wrong with it."""
    from wildrobot.workers.training import checkpoint as ckpt

    try:
        meta = ckpt.read_meta(path)
        ckpt.read_spec(path)
        ckpt.read_network_config(path)
        import orbax.checkpoint as ocp

        with ocp.StandardCheckpointer() as checkpointer:
            tree = checkpointer.restore(path.absolute() / ckpt.POLICY_DIR)
        if not tree or "policy" not in tree:
            return "policy tree missing"
    except Exception as exc:  # noqa: BLE001 - any failure to load is corruption
        return f"{type(exc).__name__}: {exc}"
    if int(meta["env_steps"]) != step:
        return f"meta says step {meta['env_steps']}, registered {step}"
    return None


def check(client: redis.Redis, artifacts: Path, acknowledged: dict[int, str]) -> dict:
    job_ids = list(acknowledged.values())
    lost, duplicated, corrupt, stuck = [], [], [], []
    states: dict[str, int] = {}
    checkpoints = 0
    # One job per request id (idempotent submit across Redis restarts).
    indexed = client.zrange(f"wr:idx:{TENANT}", 0, -1)
    if len(indexed) != len(set(job_ids)) or set(indexed) != set(job_ids):
        duplicated.append(f"index holds {len(indexed)} jobs for {len(job_ids)} requests")
    for job_id in job_ids:
        record = client.hgetall(f"wr:job:{job_id}")
        if not record:
            lost.append(f"{job_id}: no record")
            continue
        state = record["state"]
        states[state] = states.get(state, 0) + 1
        if state not in TERMINAL:
            stuck.append(f"{job_id}: {state}")
        entries = client.xrange(f"wr:job:{job_id}:events")
        seqs = [int(entry_id.split("-")[0]) for entry_id, _ in entries]
        if seqs != list(range(1, int(record["last_seq"]) + 1)):
            lost.append(f"{job_id}: event seqs {seqs[:5]}... not 1..{record['last_seq']}")
        terminal_at = [
            i
            for i, (_, fields) in enumerate(entries)
            if fields["t"] == "state" and json.loads(fields["d"])["state"] in TERMINAL
        ]
        if len(terminal_at) > 1 or (terminal_at and terminal_at[0] != len(entries) - 1):
            duplicated.append(f"{job_id}: terminal events at {terminal_at} of {len(entries)}")
        # One metrics and one checkpoint event per (attempt, step): a write applied twice shows.
        written = [
            (fields["t"], data.get("attempt"), data.get("step"))
            for _, fields in entries
            if fields["t"] in ("metrics", "checkpoint")
            for data in [json.loads(fields["d"])]
        ]
        if len(written) != len(set(written)):
            duplicated.append(f"{job_id}: a metrics or checkpoint event written twice")
        for payload in client.hvals(f"wr:job:{job_id}:ckpt"):
            info = json.loads(payload)
            checkpoints += 1
            problem = load_checkpoint(artifacts / info["path"], int(info["step"]))
            if problem is not None:
                corrupt.append(f"{job_id} step {info['step']}: {problem}")
        if state == "SUCCEEDED" and record.get("last_checkpoint") != str(
            ITERATIONS * STEPS_PER_ITERATION
        ):
            corrupt.append(f"{job_id}: SUCCEEDED without its final checkpoint")
    for problems, name in ((lost, "lost"), (duplicated, "dup"), (corrupt, "corrupt")):
        for line in problems[:20]:
            log(f"{name}: {line}")
    for line in stuck[:20]:
        log(f"stuck: {line}")
    return {
        "lost": len(lost),
        "duplicated": len(duplicated),
        "corrupt": len(corrupt),
        "stuck": len(stuck),
        "states": states,
        "checkpoints_checked": checkpoints,
    }


def run(args: argparse.Namespace) -> dict:
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="wildrobot-chaos-"))
    cluster = Cluster(root, args.workers)
    start = time.monotonic()
    acknowledged: dict[int, str] = {}
    faults = Faults(cluster, rng)
    try:
        cluster.start()
        log(f"cluster up in {root}: redis :{cluster.redis.port}, server :{cluster.port}")
        channel = grpc.insecure_channel(f"127.0.0.1:{cluster.port}")
        stub = jobs_pb2_grpc.JobServiceStub(channel)
        fault_deadline = time.monotonic() + args.fault_s
        next_fault = time.monotonic() + rng.uniform(1, 3)
        next_submit = time.monotonic()
        submit_every = args.fault_s * 0.6 / max(args.jobs, 1)
        while time.monotonic() < fault_deadline and (
            faults.total < args.faults or len(acknowledged) < args.jobs
        ):
            cluster.tick()
            now = time.monotonic()
            if len(acknowledged) < args.jobs and now >= next_submit:
                job_id = submit(stub, len(acknowledged))
                if job_id is not None:
                    acknowledged[len(acknowledged)] = job_id
                next_submit = now + submit_every
            if faults.total < args.faults and now >= next_fault:
                faults.inject()
                remaining = max(fault_deadline - time.monotonic(), 1.0)
                gap = remaining / max(args.faults - faults.total, 1)
                next_fault = time.monotonic() + rng.uniform(0.3, 1.7) * gap
            time.sleep(0.05)
        log(f"faults over ({faults.total}); draining {len(acknowledged)} jobs")
        for worker in cluster.workers:  # everything frozen resumes, everything killed restarts
            worker.stopped_until = min(worker.stopped_until, time.monotonic()) or 0.0
        client = redis.Redis.from_url(cluster.redis.url, decode_responses=True)
        drain_deadline = time.monotonic() + args.drain_s
        while time.monotonic() < drain_deadline:
            cluster.tick()
            for worker in cluster.workers:
                if worker.stopped_until:
                    worker.stopped_until = time.monotonic()
            states = job_states(client, list(acknowledged.values()))
            if all(s in TERMINAL for s in states.values()):
                break
            time.sleep(1.0)
        time.sleep(2 * HEARTBEAT_S)  # a stale attempt still running would try to write now
        result = check(client, cluster.artifacts, acknowledged)
        client.close()
        channel.close()
    finally:
        cluster.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return {
        "jobs": len(acknowledged),
        "jobs_requested": args.jobs,
        "faults_injected": faults.total,
        "faults": faults.counts,
        **result,
        "duration_s": round(time.monotonic() - start, 1),
        "workers": args.workers,
        "threads": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the <=10 min soak (see defaults)")
    parser.add_argument("--smoke", action="store_true", help="1 job, 1 worker, 1 fault")
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--faults", type=int, default=None, help="faults to inject (at most)")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--fault-s", type=float, default=None, help="time limit of the fault phase")
    parser.add_argument("--drain-s", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    defaults = {"jobs": 12, "faults": 60, "fault_s": 300.0, "drain_s": 240.0}
    if args.smoke:
        defaults = {"jobs": 1, "faults": 1, "fault_s": 15.0, "drain_s": 180.0}
        args.workers = 1
    elif not args.quick:
        defaults = {"jobs": 30, "faults": 200, "fault_s": 1200.0, "drain_s": 600.0}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    print(json.dumps(run(args)), flush=True)


if __name__ == "__main__":
    main()
