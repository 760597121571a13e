"""A Redis outage when a worker writes a job's end: the worker keeps retrying (it does not crash)
and the outcome lands once Redis is back. Real Redis, stopped and started again."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from wildrobot.queue import keys
from wildrobot.v1 import jobs_pb2
from wildrobot.workers.config import WorkerConfig
from wildrobot.workers.supervisor import Supervisor

pytestmark = [pytest.mark.redis, pytest.mark.integration]


def test_finish_survives_a_redis_outage(service, redis_server, tmp_path) -> None:
    job = (
        service.stub("alice")
        .SubmitJob(
            jobs_pb2.SubmitJobRequest(
                spec=jobs_pb2.JobSpec(ppo=jobs_pb2.PpoSpec(task="PointMass", num_envs=4,
                                                           batch_size=4, num_minibatches=2))
            )
        )
        .job
    )  # fmt: skip
    supervisor = Supervisor(
        WorkerConfig(redis_url=service.redis_url, artifact_dir=tmp_path, worker_id="w-outage")
    )
    supervisor.queue.retry_s = 0.5  # the client's own retries give up fast; _finish must not
    supervisor.queue.ensure_groups(["ppo"])
    lease = supervisor.queue.take(["ppo"], "w-outage", 60.0, 1000)
    assert lease is not None and lease.job_id == job.job_id
    failures: list[BaseException] = []

    def finish() -> None:
        try:
            supervisor._finish(lease, ("succeeded", 8, ""), 0, cancelled=False)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            failures.append(exc)

    redis_server.stop()
    try:
        thread = threading.Thread(target=finish)
        thread.start()
        time.sleep(3.0)  # several of the client's 0.5 s retry windows
        assert not failures, failures
        assert thread.is_alive()  # still retrying
    finally:
        redis_server.start()
    thread.join(60)
    assert not thread.is_alive() and not failures, failures
    client = redis.Redis.from_url(service.redis_url, decode_responses=True)
    try:
        assert client.hget(keys.job(job.job_id), "state") == "SUCCEEDED"
    finally:
        client.close()
