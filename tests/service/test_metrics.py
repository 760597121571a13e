"""Operator metrics: /metrics on the front end and on a worker name the documented series, and
their values move when a tiny job runs."""

from __future__ import annotations

import re
import socket
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.live_service import TOKEN_OF, AuthedStub, ServerThread, server_config, start_worker
from wildrobot.server import healthcheck
from wildrobot.v1 import jobs_pb2

from .tiny_jobs import STEPS_PER_ITERATION, state_is, submit, tiny_ppo, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.integration]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


def eventually(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.1)


def test_front_end_and_worker_metrics_move_with_a_job(redis_url: str, tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    config = server_config(redis_url, artifacts, metrics_port=0, metrics_interval_s=0.2)
    thread = ServerThread(config).start()
    worker = None
    try:
        port = thread.server.metrics_port
        before = scrape(port)
        assert {  # labelled RPC series appear with their first RPC (checked below)
            "wildrobot_queue_depth",
            "wildrobot_jobs",
            "wildrobot_running_leases",
            "wildrobot_lease_expiries_total",
            "wildrobot_active_watches",
        } <= names(before)
        submit_method = "/wildrobot.v1.JobService/SubmitJob"
        with grpc.insecure_channel(thread.address) as channel:
            stub = AuthedStub(channel, TOKEN_OF["alice"])
            with pytest.raises(grpc.RpcError):
                AuthedStub(channel, "wrong").GetJob(jobs_pb2.GetJobRequest(job_id="x" * 32))
            job = submit(stub, tiny_ppo(2))
            waiting = value(before, "wildrobot_queue_depth", kind="ppo")
            # No worker yet: the sampler sees the job wait.
            eventually(lambda: value(scrape(port), "wildrobot_queue_depth", kind="ppo") > waiting)
            watch = stub.WatchJob(jobs_pb2.WatchJobRequest(job_id=job.job_id), timeout=300)
            next(watch)  # the snapshot; the stream then waits for new events
            eventually(lambda: value(scrape(port), "wildrobot_active_watches") == 1)

            # A long lease: on a loaded machine a 3 s lease can expire and add an attempt.
            worker = start_worker(
                redis_url, artifacts, tmp_path / "worker.log", "--metrics-port", "0",
                "--lease-s", "60", "--heartbeat-s", "2",
            )  # fmt: skip
            eventually(lambda: "metrics on" in worker.log(), timeout=60)
            worker_port = int(re.search(r"metrics on \S+:(\d+)", worker.log()).group(1))
            idle = scrape(worker_port)
            assert {
                "wildrobot_worker_env_steps_per_second",
                "wildrobot_worker_env_steps_total",
                "wildrobot_worker_iterations_total",
                "wildrobot_worker_iteration_seconds_bucket",
                "wildrobot_worker_compile_seconds",
            } <= names(idle)
            assert value(idle, "wildrobot_worker_env_steps_total") == 0
            done = wait_for(stub, job.job_id, state_is(jobs_pb2.JOB_STATE_SUCCEEDED), timeout=300)
            for _ in watch:  # the stream ends with the job
                pass
        assert done.state == jobs_pb2.JOB_STATE_SUCCEEDED

        busy = scrape(worker_port)
        assert value(busy, "wildrobot_worker_env_steps_total") == 2 * STEPS_PER_ITERATION
        assert value(busy, "wildrobot_worker_iterations_total") == 2
        assert value(busy, "wildrobot_worker_iteration_seconds_count") == 2
        # The job is over: an idle worker trains at 0 steps/s (not the last job's rate).
        assert value(busy, "wildrobot_worker_env_steps_per_second") == 0
        assert value(busy, "wildrobot_worker_compile_seconds") == 0
        assert value(busy, "wildrobot_worker_attempts_total", outcome="succeeded") == 1
        assert not [name for name, _ in busy if name == "wildrobot_worker_current_job"]

        eventually(
            lambda: (
                value(scrape(port), "wildrobot_jobs", state="SUCCEEDED")
                > value(before, "wildrobot_jobs", state="SUCCEEDED")
            )
        )
        after = scrape(port)
        assert {"wildrobot_rpc_total", "wildrobot_rpc_latency_seconds_bucket"} <= names(after)
        assert value(after, "wildrobot_rpc_total", method=submit_method, code="OK") == 1
        assert (
            value(after, "wildrobot_rpc_total", method="/wildrobot.v1.JobService/GetJob",
                  code="UNAUTHENTICATED") == 1
        )  # fmt: skip
        assert value(after, "wildrobot_rpc_latency_seconds_count", method=submit_method) == 1
        assert value(after, "wildrobot_active_watches") == 0
    finally:
        if worker is not None:
            worker.stop()
        thread.stop()


def test_container_health_check(service) -> None:
    assert healthcheck.main([service.address]) == 0
    assert healthcheck.main([f"127.0.0.1:{free_port()}"]) == 1  # nothing listens there


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_worker_rate_gauges_clear_between_jobs() -> None:
    from wildrobot.workers.metrics import WorkerMetrics

    metrics = WorkerMetrics()
    sample = metrics.registry.get_sample_value
    metrics.job_started("a" * 32, "ppo", 1)
    metrics.progress({"env_steps_per_s": 5000.0, "iteration_s": 0.5, "compile_s": 12.0})
    assert sample("wildrobot_worker_env_steps_per_second") == 5000.0
    assert sample("wildrobot_worker_compile_seconds") == 12.0
    metrics.job_ended("succeeded")
    assert sample("wildrobot_worker_env_steps_per_second") == 0
    assert sample("wildrobot_worker_compile_seconds") == 0
    assert sample("wildrobot_worker_env_steps_total") == 2500  # counters keep counting


def test_metrics_listen_on_loopback_by_default_like_the_api() -> None:
    from wildrobot.server.config import ServerConfig

    config = ServerConfig()
    assert config.metrics_host == config.host == "127.0.0.1"


def test_dashboard_http_and_sse_have_their_own_series(service) -> None:
    from tests.dashboard.http_client import SseStream, call

    metrics = service.thread.server.services.metrics
    sample = metrics.registry.get_sample_value
    alice = TOKEN_OF["alice"]
    stub = service.stub("alice")
    job = submit(stub, tiny_ppo(1))
    assert call(service.http_url, "/api/whoami", alice).status == 200
    assert call(service.http_url, "/api/jobs?page_size=-1", alice).status == 400
    assert call(service.http_url, f"/api/jobs/{job.job_id}", "wrong").status == 401
    assert call(service.http_url, "/nowhere").status == 404
    requests = "wildrobot_http_requests_total"
    job_route = "/api/jobs/{job_id}"
    for route, status in [
        ("/api/whoami", "200"), ("/api/jobs", "400"), (job_route, "401"), ("unmatched", "404")
    ]:  # counted as the response ends, just after the client has it
        labels = {"route": route, "method": "GET", "status": status}
        eventually(lambda labels=labels: sample(requests, labels) == 1)
    assert sample("wildrobot_http_latency_seconds_count", {"route": "/api/whoami"}) == 1
    assert not sample("wildrobot_rpc_total", {"method": "/api/whoami", "code": "OK"})

    # An SSE stream counts as an SSE stream, a WatchJob as a watch; each apart.
    events = SseStream(service.http_url, f"/api/jobs/{job.job_id}/events", alice)
    assert events.next().event == "snapshot"
    assert (sample("wildrobot_active_sse_streams"), sample("wildrobot_active_watches")) == (1, 0)
    watch = stub.WatchJob(jobs_pb2.WatchJobRequest(job_id=job.job_id, since_seq=job.last_seq))
    assert next(watch).HasField("snapshot")
    assert (sample("wildrobot_active_sse_streams"), sample("wildrobot_active_watches")) == (1, 1)
    # The client cancels its watch: CANCELLED, not UNKNOWN.
    watch.cancel()
    method = "/wildrobot.v1.JobService/WatchJob"
    eventually(lambda: sample("wildrobot_rpc_total", {"method": method, "code": "CANCELLED"}) == 1)
    assert not sample("wildrobot_rpc_total", {"method": method, "code": "UNKNOWN"})
    eventually(lambda: sample("wildrobot_active_watches") == 0)
    events.close()
    eventually(lambda: sample("wildrobot_active_sse_streams") == 0)
    stream_route = "/api/jobs/{job_id}/events"
    eventually(
        lambda: sample(requests, {"route": stream_route, "method": "GET", "status": "200"}) == 1
    )
