"""End to end and chaos: the real server, real Redis and real worker processes on PointMass PPO."""

from __future__ import annotations

import io
import signal
import tarfile
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
import redis

from wildrobot.queue import keys
from wildrobot.v1 import jobs_pb2

from .tiny_jobs import state_is, submit, tiny_ppo, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.integration, pytest.mark.slow]

LONG = 300  # iterations: ~0.1 s each on a 2-core CPU, long enough to interrupt mid-run


class Watcher:
    """Collects a job's WatchJob stream in a background thread."""

    def __init__(self, stub, job_id: str) -> None:
        self.events: list[tuple[float, jobs_pb2.JobEvent]] = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(stub, job_id), daemon=True)
        self._thread.start()

    def _run(self, stub, job_id: str) -> None:
        try:
            for event in stub.WatchJob(jobs_pb2.WatchJobRequest(job_id=job_id), timeout=600):
                self.events.append((time.monotonic(), event))
        except BaseException as exc:  # noqa: BLE001 - reported by join()
            self.error = exc

    def join(self, timeout: float = 300) -> list[jobs_pb2.JobEvent]:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "watch did not end"
        assert self.error is None, self.error
        return [event for _, event in self.events]


def kinds(events: list[jobs_pb2.JobEvent]) -> list[str]:
    return [e.WhichOneof("event") for e in events]


def states(events: list[jobs_pb2.JobEvent]) -> list[int]:
    return [e.state.state for e in events if e.WhichOneof("event") == "state"]


def test_ppo_job_end_to_end(service, worker_factory, tmp_path: Path) -> None:
    stub = service.stub("alice")
    job = submit(stub, tiny_ppo(6, checkpoint_every=2), name="tiny")
    watcher = Watcher(stub, job.job_id)
    worker_factory()
    events = watcher.join()
    assert kinds(events)[0] == "snapshot"
    assert states(events) == [
        jobs_pb2.JOB_STATE_PENDING,
        jobs_pb2.JOB_STATE_RUNNING,
        jobs_pb2.JOB_STATE_SUCCEEDED,
    ]
    metrics = [e.metrics for e in events if e.WhichOneof("event") == "metrics"]
    assert [m.step for m in metrics] == [1280 * i for i in range(1, 7)]
    assert all(np.isfinite(list(m.values.values())).all() and m.values for m in metrics)
    # Metric events arrive while the job runs, before the terminal event.
    arrival = {id(e): t for t, e in watcher.events}
    first_metric = next(e for e in events if e.WhichOneof("event") == "metrics")
    assert arrival[id(first_metric)] < arrival[id(events[-1])]
    assert [e.seq for e in events[1:]] == list(range(1, len(events)))

    final = stub.GetJob(jobs_pb2.GetJobRequest(job_id=job.job_id))
    assert final.state == jobs_pb2.JOB_STATE_SUCCEEDED and final.attempt == 1
    assert final.progress.steps_done == final.progress.steps_total == 6 * 1280
    assert final.last_metrics and final.finished_at.seconds > 0 and not final.error

    checkpoints = stub.ListCheckpoints(
        jobs_pb2.ListCheckpointsRequest(job_id=job.job_id)
    ).checkpoints
    assert [c.step for c in checkpoints] == [2560, 5120, 7680]
    chunks = list(stub.DownloadCheckpoint(jobs_pb2.DownloadCheckpointRequest(job_id=job.job_id)))
    assert chunks[0].info.step == 7680 and all(not c.HasField("info") for c in chunks[1:])
    assert len(chunks) > 1  # 16 KiB chunks in tests
    with tarfile.open(fileobj=io.BytesIO(b"".join(c.data for c in chunks))) as tar:
        tar.extractall(tmp_path / "download", filter="data")
    (root,) = (tmp_path / "download").iterdir()

    import jax.numpy as jnp

    from wildrobot.workers.training.ppo import load_policy

    actions = load_policy(root)(jnp.ones((3, 6)))
    assert actions.shape[0] == 3 and np.isfinite(np.asarray(actions)).all()

    older = list(
        stub.DownloadCheckpoint(jobs_pb2.DownloadCheckpointRequest(job_id=job.job_id, step=2560))
    )
    assert older[0].info.step == 2560
    with pytest.raises(grpc.RpcError) as err:
        list(stub.DownloadCheckpoint(jobs_pb2.DownloadCheckpointRequest(job_id=job.job_id, step=1)))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_cancel_running_and_pending(service, worker_factory) -> None:
    stub = service.stub("alice")
    running = submit(stub, tiny_ppo(100_000, checkpoint_every=1000))
    pending = submit(stub, tiny_ppo(6))
    worker_factory()
    wait_for(stub, running.job_id, lambda j: j.progress.steps_done > 0)
    cancelled = stub.CancelJob(jobs_pb2.CancelJobRequest(job_id=pending.job_id)).job
    assert cancelled.state == jobs_pb2.JOB_STATE_CANCELLED
    cancelling = stub.CancelJob(jobs_pb2.CancelJobRequest(job_id=running.job_id)).job
    assert cancelling.state == jobs_pb2.JOB_STATE_CANCELLING
    done = wait_for(stub, running.job_id, state_is(jobs_pb2.JOB_STATE_CANCELLED), timeout=60)
    assert "cancelled at step" in done.error
    # The runner wrote a final checkpoint at the step it stopped.
    checkpoints = stub.ListCheckpoints(jobs_pb2.ListCheckpointsRequest(job_id=running.job_id))
    assert checkpoints.checkpoints[-1].step == done.progress.steps_done
    with pytest.raises(grpc.RpcError) as err:
        stub.CancelJob(jobs_pb2.CancelJobRequest(job_id=running.job_id))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    # The cancelled pending job is never run: its queue entry is skipped.
    time.sleep(1.0)
    job = stub.GetJob(jobs_pb2.GetJobRequest(job_id=pending.job_id))
    assert job.state == jobs_pb2.JOB_STATE_CANCELLED and job.attempt == 0


def _events(stub, job_id: str) -> list[jobs_pb2.JobEvent]:
    return list(stub.WatchJob(jobs_pb2.WatchJobRequest(job_id=job_id), timeout=60))


def _checkpointed(stub, job_id: str) -> bool:
    return bool(stub.ListCheckpoints(jobs_pb2.ListCheckpointsRequest(job_id=job_id)).checkpoints)


def test_kill9_worker_job_resumes_on_another(service, worker_factory) -> None:
    stub = service.stub("alice")
    job = submit(stub, tiny_ppo(LONG, checkpoint_every=10))
    first = worker_factory()
    wait_for(stub, job.job_id, lambda j: _checkpointed(stub, j.job_id))
    first.signal(signal.SIGKILL)
    killed_at = stub.GetJob(jobs_pb2.GetJobRequest(job_id=job.job_id)).progress.steps_done
    recovering = wait_for(stub, job.job_id, state_is(jobs_pb2.JOB_STATE_RECOVERING), timeout=30)
    assert "expired" in recovering.error
    worker_factory()
    done = wait_for(stub, job.job_id, state_is(jobs_pb2.JOB_STATE_SUCCEEDED), timeout=300)
    assert done.attempt == 2 and done.progress.steps_done == LONG * 1280
    events = _events(stub, job.job_id)
    second = [e.metrics.step for e in events if e.WhichOneof("event") == "metrics" and e.seq > 0]
    resumed_from = max(
        e.checkpoint.step
        for e in events
        if e.WhichOneof("event") == "checkpoint" and e.checkpoint.attempt == 1
    )
    # Attempt 2 continues from attempt 1's last checkpoint: its first step is one past it.
    attempt_of = _attempt_by_seq(events)
    first_of_second = min(
        e.metrics.step
        for e in events
        if e.WhichOneof("event") == "metrics" and attempt_of[e.seq] == 2
    )
    assert first_of_second == resumed_from + 1280
    logs = " ".join(e.log.message for e in events if e.WhichOneof("event") == "log")
    assert f"attempt 2 resumes from the checkpoint at step {resumed_from}" in logs
    assert resumed_from <= killed_at and second[-1] == LONG * 1280


def _attempt_by_seq(events: list[jobs_pb2.JobEvent]) -> dict[int, int]:
    """The attempt each event belongs to, by the state events that bracket it."""
    attempt, out = 0, {}
    for event in events:
        if event.WhichOneof("event") == "state" and event.state.state == jobs_pb2.JOB_STATE_RUNNING:
            attempt = event.state.attempt
        out[event.seq] = attempt
    return out


def test_frozen_worker_loses_job_and_its_writes_are_refused(service, worker_factory) -> None:
    stub = service.stub("alice")
    job = submit(stub, tiny_ppo(LONG, checkpoint_every=10))
    frozen = worker_factory()
    wait_for(stub, job.job_id, lambda j: _checkpointed(stub, j.job_id))
    frozen.signal(signal.SIGSTOP)
    try:
        wait_for(stub, job.job_id, state_is(jobs_pb2.JOB_STATE_RECOVERING), timeout=30)
        worker_factory()
        wait_for(
            stub, job.job_id, lambda j: j.attempt == 2 and j.progress.steps_done > 0, timeout=120
        )
    finally:
        frozen.signal(signal.SIGCONT)
    done = wait_for(stub, job.job_id, state_is(jobs_pb2.JOB_STATE_SUCCEEDED), timeout=300)
    assert done.attempt == 2
    deadline = time.monotonic() + 30
    while (
        "lease lost" not in frozen.log()
        and "refused" not in frozen.log()
        and time.monotonic() < deadline
    ):
        time.sleep(0.5)
    assert "lease lost" in frozen.log() or "refused" in frozen.log(), frozen.log()[-2000:]
    # Nothing from attempt 1 landed after attempt 2 started.
    events = _events(stub, job.job_id)
    start_2 = next(
        e.seq for e in events if e.WhichOneof("event") == "state" and e.state.attempt == 2
    )
    late = [
        e
        for e in events
        if e.seq > start_2
        and (
            (e.WhichOneof("event") == "checkpoint" and e.checkpoint.attempt == 1)
            or (e.WhichOneof("event") == "state" and e.state.attempt == 1)
        )
    ]
    assert not late
    assert frozen.proc.poll() is None  # the worker itself lives on, ready for the next job


def test_sigterm_releases_job_without_using_a_retry(service, worker_factory) -> None:
    stub = service.stub("alice")
    job = submit(stub, tiny_ppo(LONG, checkpoint_every=50))
    first = worker_factory()
    wait_for(stub, job.job_id, lambda j: j.progress.steps_done > 0)
    first.signal(signal.SIGTERM)
    first.proc.wait(60)
    released = stub.GetJob(jobs_pb2.GetJobRequest(job_id=job.job_id))
    assert released.state == jobs_pb2.JOB_STATE_RECOVERING and "shut down" in released.error
    checkpoints = stub.ListCheckpoints(
        jobs_pb2.ListCheckpointsRequest(job_id=job.job_id)
    ).checkpoints
    assert checkpoints[-1].step == released.progress.steps_done  # checkpointed on the way out
    client = redis.Redis.from_url(service.redis_url, decode_responses=True)
    assert client.hget(keys.job(job.job_id), "lost") == "0"
    client.close()
    worker_factory()
    done = wait_for(stub, job.job_id, state_is(jobs_pb2.JOB_STATE_SUCCEEDED), timeout=300)
    assert done.attempt == 2


def test_redis_restart_keeps_acknowledged_jobs(service, worker_factory, redis_server) -> None:
    stub = service.stub("alice")
    running = submit(stub, tiny_ppo(100, checkpoint_every=50))
    queued = [submit(stub, tiny_ppo(3), request_id=f"q{i}").job_id for i in range(2)]
    worker_factory()
    wait_for(stub, running.job_id, lambda j: j.progress.steps_done > 0)
    redis_server.restart()
    for job_id in [running.job_id, *queued]:
        assert stub.GetJob(jobs_pb2.GetJobRequest(job_id=job_id)).job_id == job_id
    again = submit(stub, tiny_ppo(3), request_id="q0")
    assert again.job_id == queued[0]
    for job_id in [running.job_id, *queued]:
        wait_for(stub, job_id, state_is(jobs_pb2.JOB_STATE_SUCCEEDED), timeout=300)


def test_job_error_fails_without_retry(service, worker_factory) -> None:
    stub = service.stub("alice")
    spec = tiny_ppo(3)
    # A valid spec whose training goes wrong on the worker (PointMass's test hook turns rewards
    # NaN after 20 steps per env): an error of the job itself, not of the infrastructure.
    # (A bad override can no longer show this: it is refused at submit.)
    spec.env_overrides["nan_reward_after_steps"].number_value = 20
    job = submit(stub, spec)
    worker_factory()
    failed = wait_for(stub, job.job_id, state_is(jobs_pb2.JOB_STATE_FAILED), timeout=120)
    assert failed.attempt == 1 and "non-finite" in failed.error
    time.sleep(1.0)
    assert stub.GetJob(jobs_pb2.GetJobRequest(job_id=job.job_id)).attempt == 1
