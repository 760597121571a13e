"""A num_hosts=2 job end to end: real front end, Redis and worker; the worker launches two
`wildrobot-host` processes (the local launcher: the code path of a Kubernetes Indexed Job's pods,
on CPU) and holds the lease while they train; process 0 publishes and checkpoints, fenced."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live_service import ServerThread, Service, server_config
from wildrobot.v1 import jobs_pb2

from .tiny_jobs import STEPS_PER_ITERATION, state_is, submit, tiny_ppo, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def service(redis_url: str, tmp_path: Path) -> Iterator[Service]:
    """A front end that allows two hosts per job (the default deployment allows one)."""
    artifact_dir = tmp_path / "artifacts"
    artifact_dir.mkdir()
    thread = ServerThread(server_config(redis_url, artifact_dir, max_hosts=2)).start()
    svc = Service(thread, redis_url, artifact_dir)
    yield svc
    svc.close()
    thread.stop()

# Nothing here needs a lease to expire; a long one keeps a loaded machine from adding attempts.
LONG_LEASE = ("--lease-s", "60", "--heartbeat-s", "2")


def test_two_host_job_succeeds_through_the_launching_worker(service, worker_factory) -> None:
    stub = service.stub("alice")
    worker = worker_factory(*LONG_LEASE)
    job = submit(stub, tiny_ppo(3, checkpoint_every=1, num_hosts=2))
    done = wait_for(
        stub,
        job.job_id,
        state_is(jobs_pb2.JOB_STATE_SUCCEEDED, jobs_pb2.JOB_STATE_FAILED),
        timeout=400,
    )
    run_dir = service.artifact_dir / job.job_id / "attempt-1"
    logs = {p.name: p.read_text(errors="replace") for p in run_dir.glob("host-*.log")}
    assert done.state == jobs_pb2.JOB_STATE_SUCCEEDED, (done.error, worker.log()[-3000:], logs)
    assert done.attempt == 1
    assert done.spec.ppo.num_hosts == 2
    assert done.progress.steps_done == 3 * STEPS_PER_ITERATION  # published by process 0
    assert sorted(logs) == ["host-1-0.log", "host-1-1.log"]
    for index, (_, text) in enumerate(sorted(logs.items())):
        assert f"process {index} of 2" in text
    checkpoints = stub.ListCheckpoints(jobs_pb2.ListCheckpointsRequest(job_id=job.job_id))
    steps = [c.step for c in checkpoints.checkpoints]
    assert steps == [STEPS_PER_ITERATION * i for i in (1, 2, 3)]
    # One writer: the checkpoints on disk are exactly the registered ones.
    on_disk = sorted(int(p.name) for p in (run_dir / "checkpoints").iterdir())
    assert on_disk == steps


def test_cancel_stops_every_host_after_a_checkpoint(service, worker_factory) -> None:
    """Cancel reaches the hosts through the launching worker: process 0 checkpoints, all stop."""
    stub = service.stub("alice")
    worker_factory(*LONG_LEASE)
    job = submit(stub, tiny_ppo(10_000, checkpoint_every=1000, num_hosts=2))
    wait_for(stub, job.job_id, lambda j: j.progress.steps_done > 0, timeout=400)
    stub.CancelJob(jobs_pb2.CancelJobRequest(job_id=job.job_id))
    done = wait_for(
        stub, job.job_id, state_is(jobs_pb2.JOB_STATE_CANCELLED, jobs_pb2.JOB_STATE_FAILED), 300
    )
    assert done.state == jobs_pb2.JOB_STATE_CANCELLED, done.error
    checkpoints = stub.ListCheckpoints(jobs_pb2.ListCheckpointsRequest(job_id=job.job_id))
    # checkpoint_every is never reached: this one is the stop's, at the step both hosts stopped.
    assert [c.step for c in checkpoints.checkpoints] == [done.progress.steps_done]
    assert 0 < done.progress.steps_done < 10_000 * STEPS_PER_ITERATION
    logs = [p.read_text() for p in (service.artifact_dir / job.job_id).glob("attempt-*/host-*.log")]
    assert len(logs) == 2 and all("(stopped)" in text for text in logs)
