"""Issue 15, defect 10: Redis stays bounded. Queue entries are deleted when taken, finished jobs
are archived to the artifact store and deleted after the retention, and per-tenant quotas bound
the pending and running jobs."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.service.test_queue import LEASE_S, SPEC, take
from wildrobot.queue import keys
from wildrobot.queue.client import QueueClient
from wildrobot.server import config as server_config
from wildrobot.server import errors, watch
from wildrobot.server.archive import JobArchive
from wildrobot.server.artifacts import CheckpointService
from wildrobot.server.jobs import JobService
from wildrobot.server.reaper import ensure_groups
from wildrobot.server.retention import Retention
from wildrobot.specs import JobState
from wildrobot.workers import config as worker_config

pytestmark = pytest.mark.redis


def with_jobs(url: str, fn, **kwargs):
    async def go():
        client = aioredis.Redis.from_url(url, decode_responses=True)
        try:
            await ensure_groups(client)
            return await fn(JobService(client, **kwargs), client)
        finally:
            await client.aclose()

    return asyncio.run(go())


def submit_n(url: str, n: int, tenant: str = "alice", **kwargs) -> list[str]:
    async def go(jobs: JobService, _):
        return [(await jobs.submit(tenant, SPEC)).record.job_id for _ in range(n)]

    return with_jobs(url, go, **kwargs)


def test_queue_entries_are_deleted_when_taken(redis_url: str, queue: QueueClient) -> None:
    ids = submit_n(redis_url, 3)
    assert queue.redis.xlen(keys.queue("ppo")) == 3
    take(queue)
    assert queue.redis.xlen(keys.queue("ppo")) == 2
    with_jobs(redis_url, lambda jobs, _: jobs.cancel("alice", ids[1]))
    take(queue)  # skips (and deletes) the cancelled job's entry, takes the third
    assert queue.redis.xlen(keys.queue("ppo")) == 0


def test_pending_quota_is_resource_exhausted_naming_it(redis_url: str, queue) -> None:
    submit_n(redis_url, 2, max_pending_per_tenant=2)
    with pytest.raises(errors.ResourceExhausted, match=r"max_pending_jobs_per_tenant=2"):
        submit_n(redis_url, 1, max_pending_per_tenant=2)
    submit_n(redis_url, 1, tenant="bob", max_pending_per_tenant=2)  # per tenant
    take(queue)  # alice's first starts running: one slot frees
    submit_n(redis_url, 1, max_pending_per_tenant=2)
    assert queue.redis.scard(keys.tenant_queued("alice")) == 2


def test_running_quota_keeps_the_job_queued(redis_url: str, queue: QueueClient) -> None:
    queue.max_running_per_tenant = 1
    a1, a2 = submit_n(redis_url, 2)
    (b1,) = submit_n(redis_url, 1, tenant="bob")
    assert take(queue).job_id == a1
    assert queue.take(["ppo"], "w1", LEASE_S, block_ms=10) is None  # a2 waits (alice at quota)
    assert queue.redis.hget(keys.job(a2), "state") == "PENDING"
    assert take(queue).job_id == b1
    running = queue.redis.smembers(keys.tenant_running("alice"))
    assert running == {a1}
    # a1 ends: a2 may run.
    finished = queue.redis.hget(keys.job(a1), "attempt")
    from wildrobot.queue.client import Lease

    queue.finish(Lease(a1, int(finished), "ppo", "{}", "w1"), "SUCCEEDED", "", 3)
    assert take(queue).job_id == a2
    assert queue.redis.xlen(keys.queue("ppo")) == 0


def test_finished_jobs_are_archived_then_deleted(
    redis_url: str, queue: QueueClient, tmp_path: Path
) -> None:
    archive = JobArchive(tmp_path / "artifacts")
    (job_id,) = submit_n(redis_url, 1, archive=archive)
    lease = take(queue)
    queue.checkpoint(lease, 128, f"{job_id}/attempt-1/checkpoints/000000000128", 10)
    queue.finish(lease, "SUCCEEDED", "", 3)

    async def retire(jobs: JobService, client):
        retention = Retention(client, archive, ttl_s=0.2)
        assert await retention.retire_expired() == []  # not yet due
        await asyncio.sleep(0.3)
        retired = await retention.retire_expired()
        record = await jobs.get("alice", job_id)  # answered from the archive
        with pytest.raises(errors.NotFound):
            await jobs.get("bob", job_id)
        listed, _ = await jobs.list("alice")
        hub = watch.WatchHub(client)  # a finished job's watch never subscribes
        watched = [item async for item in watch.watch(jobs, hub, "alice", job_id, 1)]
        checkpoints = await CheckpointService(jobs, tmp_path, 1024).list("alice", job_id)
        assert [c.step for c in checkpoints] == [128]
        return retired, record, listed, watched

    retired, record, listed, watched = with_jobs(redis_url, retire, archive=archive)
    assert [e.seq for e in watched[1:]] == [2, 3, 4]  # from the archive, after since_seq=1
    assert watched[-1].is_terminal
    assert retired == [job_id]
    assert record.state == JobState.SUCCEEDED and record.job_id == job_id
    assert listed == []
    for key in (keys.job(job_id), keys.events(job_id), keys.checkpoints(job_id)):
        assert not queue.redis.exists(key), key
    assert queue.redis.zscore(keys.FINISHED, job_id) is None
    saved = json.loads(archive.path(job_id).read_text())
    states = [json.loads(e["d"])["state"] for e in saved["events"] if e["t"] == "state"]
    assert states == ["PENDING", "RUNNING", "SUCCEEDED"]
    assert [e["seq"] for e in saved["events"]] == list(range(1, len(saved["events"]) + 1))
    assert json.loads(saved["checkpoints"][0])["step"] == 128


def test_unfinished_jobs_are_never_retired(redis_url: str, queue, tmp_path: Path) -> None:
    archive = JobArchive(tmp_path)
    (job_id,) = submit_n(redis_url, 1)
    take(queue)
    time.sleep(0.1)

    async def retire(jobs: JobService, client):
        return await Retention(client, archive, ttl_s=0.01).retire(job_id)

    assert with_jobs(redis_url, retire) is False
    assert not archive.path(job_id).exists()
    assert queue.redis.hget(keys.job(job_id), "state") == "RUNNING"


def test_limits_are_configurable_by_env() -> None:
    cfg = server_config.load_config(
        [],
        {"WILDROBOT_FINISHED_JOB_TTL_S": "60", "WILDROBOT_MAX_PENDING_JOBS_PER_TENANT": "5"},
    )
    assert (cfg.finished_job_ttl_s, cfg.max_pending_jobs_per_tenant) == (60, 5)
    assert server_config.ServerConfig().finished_job_ttl_s == keys.FINISHED_JOB_TTL_S > 0
    wcfg = worker_config.load_config([], {"WILDROBOT_MAX_RUNNING_JOBS_PER_TENANT": "2"})
    assert wcfg.max_running_jobs_per_tenant == 2
