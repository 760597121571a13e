"""The queue and the domain services without gRPC: leases, fencing, reaper, retries, cancel."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
import redis.asyncio as aioredis

from wildrobot import costs
from wildrobot.queue import keys
from wildrobot.queue.client import Lease, LeaseLost, QueueClient
from wildrobot.server import errors
from wildrobot.server.jobs import JobService
from wildrobot.server.reaper import Reaper, ensure_groups
from wildrobot.specs import JobState
from wildrobot.v1 import jobs_pb2

pytestmark = pytest.mark.redis

SPEC = jobs_pb2.JobSpec(
    ppo=jobs_pb2.PpoSpec(task="PointMass", num_envs=4, batch_size=4, num_minibatches=2)
)
LEASE_S = 0.3


def run(coro):
    return asyncio.run(coro)


async def _with_service(url: str, fn):
    client = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        await ensure_groups(client)
        return await fn(JobService(client), Reaper(client, max_retries=1, orphan_after_s=0.2))
    finally:
        await client.aclose()


def submit(url: str, tenant: str = "alice", **kwargs) -> str:
    async def go(jobs: JobService, _: Reaper) -> str:
        return (await jobs.submit(tenant, SPEC, **kwargs)).record.job_id

    return run(_with_service(url, go))


def state(url: str, job_id: str) -> dict[str, str]:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        return client.hgetall(keys.job(job_id))
    finally:
        client.close()


def reap(url: str) -> dict[str, str]:
    async def go(_: JobService, reaper: Reaper) -> dict[str, str]:
        return await reaper.reap_expired()

    return run(_with_service(url, go))


def take(queue: QueueClient, owner: str = "w1") -> Lease:
    lease = queue.take(["ppo"], owner, LEASE_S, block_ms=100)
    assert lease is not None
    return lease


def test_take_leases_and_fences(redis_url: str, queue: QueueClient) -> None:
    job_id = submit(redis_url)
    lease = take(queue)
    assert (lease.job_id, lease.attempt) == (job_id, 1)
    assert queue.take(["ppo"], "w2", LEASE_S, block_ms=50) is None  # one entry, one taker
    record = state(redis_url, job_id)
    assert record["state"] == "RUNNING" and record["lease_owner"] == "w1"
    queue.metrics(lease, 100, {"loss": 1.5, "bad": float("nan")}, 1.0, 50.0)
    queue.checkpoint(lease, 100, f"{job_id}/checkpoints/000000000100", 10)
    assert queue.renew(lease, LEASE_S) == "RUNNING"
    stale = Lease(job_id, 0, "ppo", "{}", "w1")
    for write in (
        lambda: queue.metrics(stale, 200, {}, 1.0, 1.0),
        lambda: queue.checkpoint(stale, 200, "x", 1),
        lambda: queue.renew(stale, LEASE_S),
        lambda: queue.finish(stale, "SUCCEEDED", "", 3),
    ):
        with pytest.raises(LeaseLost):
            write()
    record = state(redis_url, job_id)
    assert record["steps_done"] == "100" and '"bad"' not in record["last_metrics"]
    assert queue.finish(lease, "SUCCEEDED", "", 3) == "SUCCEEDED"
    with pytest.raises(LeaseLost):
        queue.metrics(lease, 300, {}, 1.0, 1.0)  # a finished job takes no more writes


def test_reaper_requeues_then_fails_after_retry_limit(redis_url: str, queue: QueueClient) -> None:
    job_id = submit(redis_url)
    first = take(queue)
    assert reap(redis_url) == {}  # lease still valid
    time.sleep(LEASE_S + 0.1)
    assert reap(redis_url) == {job_id: "RECOVERING"}
    assert "expired" in state(redis_url, job_id)["error"]
    with pytest.raises(LeaseLost):
        queue.metrics(first, 1, {}, 0.0, 0.0)  # the old attempt is fenced off
    second = take(queue, "w2")
    assert second.attempt == 2
    time.sleep(LEASE_S + 0.1)
    assert reap(redis_url) == {job_id: "FAILED"}  # max_retries=1: the second loss is final
    record = state(redis_url, job_id)
    assert record["state"] == "FAILED" and "retry limit" in record["error"]
    assert not redis.Redis.from_url(redis_url).zscore(keys.LEASES, job_id)


def test_release_does_not_use_a_retry_but_lost_does(redis_url: str, queue: QueueClient) -> None:
    job_id = submit(redis_url)
    assert queue.finish(take(queue), "RELEASE", "shutting down", 1) == "RECOVERING"
    assert state(redis_url, job_id)["lost"] == "0"
    assert queue.finish(take(queue), "LOST", "runner died", 1) == "RECOVERING"
    assert state(redis_url, job_id)["lost"] == "1"
    assert queue.finish(take(queue), "LOST", "runner died", 1) == "FAILED"
    assert state(redis_url, job_id)["attempt"] == "3"


def test_job_error_fails_without_retry(redis_url: str, queue: QueueClient) -> None:
    job_id = submit(redis_url)
    assert queue.finish(take(queue), "FAILED", "NonFiniteError: loss", 3) == "FAILED"
    assert state(redis_url, job_id)["error"] == "NonFiniteError: loss"
    assert queue.take(["ppo"], "w1", LEASE_S, block_ms=50) is None


def test_cancel_flows(redis_url: str, queue: QueueClient) -> None:
    pending, running = submit(redis_url), submit(redis_url)

    async def go(jobs: JobService, _: Reaper) -> None:
        assert (await jobs.cancel("alice", pending)).state == JobState.CANCELLED
        lease = take(queue)  # the cancelled job's entry is skipped; the next one is taken
        assert lease.job_id == running
        assert (await jobs.cancel("alice", running)).state == JobState.CANCELLING
        assert queue.renew(lease, LEASE_S) == "CANCELLING"
        assert queue.finish(lease, "CANCELLED", "cancelled at step 5", 3) == "CANCELLED"
        with pytest.raises(errors.FailedPrecondition):
            await jobs.cancel("alice", running)
        with pytest.raises(errors.NotFound):
            await jobs.cancel("bob", pending)

    run(_with_service(redis_url, go))


def test_release_of_cancelling_job_ends_cancelled(redis_url: str, queue: QueueClient) -> None:
    job_id = submit(redis_url)
    lease = take(queue)
    run(_with_service(redis_url, lambda jobs, _: jobs.cancel("alice", job_id)))
    assert queue.finish(lease, "RELEASE", "shutting down", 3) == "CANCELLED"


def test_workers_take_jobs_by_host_count(redis_url: str, queue: QueueClient) -> None:
    """GPU workers ("skip") leave num_hosts > 1 jobs queued for a launcher ("only") that needs no
    GPU, and the launcher leaves single-host jobs to them; being passed over uses no attempt."""
    two_hosts = jobs_pb2.JobSpec()
    two_hosts.CopyFrom(SPEC)
    two_hosts.ppo.num_hosts = 2

    async def go(jobs: JobService, _: Reaper) -> list[str]:
        jobs = JobService(jobs.redis, cost_limits=costs.CostLimits(max_hosts=2))
        return [(await jobs.submit("alice", s)).record.job_id for s in (two_hosts, SPEC, SPEC)]

    multi, single, other = run(_with_service(redis_url, go))
    assert queue.take(["ppo"], "gpu", LEASE_S, block_ms=100, multihost="skip") is None
    assert take_as(queue, "gpu", "skip").job_id == single  # the 2-host job went to the tail
    assert queue.take(["ppo"], "launcher", LEASE_S, block_ms=100, multihost="only") is None
    launched = take_as(queue, "launcher", "only")
    assert (launched.job_id, launched.attempt) == (multi, 1)
    assert take_as(queue, "any", "take").job_id == other
    assert state(redis_url, multi)["state"] == "RUNNING"


def take_as(queue: QueueClient, owner: str, multihost: str) -> Lease:
    lease = queue.take(["ppo"], owner, LEASE_S, block_ms=100, multihost=multihost)
    assert lease is not None
    return lease


def test_orphaned_queue_entry_is_requeued(redis_url: str, queue: QueueClient) -> None:
    job_id = submit(redis_url)
    # A consumer reads the entry and dies before the take script runs.
    assert queue.redis.xreadgroup(keys.QUEUE_GROUP, "dead", {keys.queue("ppo"): ">"}, count=1)
    assert queue.take(["ppo"], "w1", LEASE_S, block_ms=50) is None
    time.sleep(0.3)

    async def go(_: JobService, reaper: Reaper) -> int:
        return await reaper.requeue_orphans()

    assert run(_with_service(redis_url, go)) == 1
    assert take(queue).job_id == job_id


def test_submit_is_idempotent_and_atomic(redis_url: str) -> None:
    first = submit(redis_url, request_id="r1")
    assert submit(redis_url, request_id="r1") == first
    assert submit(redis_url, tenant="bob", request_id="r1") != first
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    assert client.xlen(keys.queue("ppo")) == 2
    assert client.zcard(keys.tenant_index("alice")) == 1
    assert client.xlen(keys.events(first)) == 1
    client.close()
