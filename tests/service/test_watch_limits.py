"""Issue 15, defect 11: watches are bounded (per-watch queue, watches per tenant) and never skip
events silently (a reconnect from a trimmed since_seq is told which events are gone)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import redis.asyncio as aioredis

from tests.live_service import TOKEN_OF, ServerThread, Service, server_config
from tests.service.test_queue import SPEC
from tests.service.tiny_jobs import submit, tiny_ppo
from wildrobot.clients import Client
from wildrobot.clients.commands.watch import _describe
from wildrobot.clients.types import EventsTrimmed, Snapshot
from wildrobot.queue import keys
from wildrobot.queue.records import JobRecord
from wildrobot.server import errors, watch
from wildrobot.server.jobs import JobService
from wildrobot.server.reaper import ensure_groups
from wildrobot.v1 import jobs_pb2

pytestmark = [pytest.mark.redis, pytest.mark.integration]


@pytest.fixture
def limited(redis_url: str, tmp_path: Path) -> Iterator[Service]:
    config = server_config(
        redis_url, tmp_path, max_watches_per_tenant=2, watch_queue_events=5, watch_block_ms=20
    )
    thread = ServerThread(config).start()
    svc = Service(thread, redis_url, tmp_path)
    yield svc
    svc.close()
    thread.stop()


def open_watch(service: Service, tenant: str, job_id: str):
    stream = service.stub(tenant).WatchJob(jobs_pb2.WatchJobRequest(job_id=job_id))
    first = next(stream)
    assert first.WhichOneof("event") == "snapshot"
    return stream


def test_watches_per_tenant_are_capped(limited: Service, queue) -> None:
    job_id = submit(limited.stub("alice"), tiny_ppo(2)).job_id
    bob_job = submit(limited.stub("bob"), tiny_ppo(2)).job_id
    first, _second = open_watch(limited, "alice", job_id), open_watch(limited, "alice", job_id)
    with pytest.raises(grpc.RpcError) as caught:
        open_watch(limited, "alice", job_id)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "max_watches_per_tenant=2" in caught.value.details()
    open_watch(limited, "bob", bob_job)  # another tenant is not affected
    first.cancel()
    deadline = time.monotonic() + 10
    while True:  # the server notices the cancel and frees the slot
        try:
            open_watch(limited, "alice", job_id)
            break
        except grpc.RpcError:
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_a_slow_reader_is_dropped_with_where_to_resume(redis_url: str, queue) -> None:
    """The hub never queues more than watch_queue_events for one reader: past it the watch ends
    with RESOURCE_EXHAUSTED naming the seq to reconnect from (the SDK resumes there)."""

    async def go() -> str:
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        hub_client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        hub = watch.WatchHub(hub_client, 20, queue_events=5)
        hub_task = asyncio.create_task(hub.run())
        try:
            await ensure_groups(client)
            jobs = JobService(client)
            job_id = (await jobs.submit("alice", SPEC)).record.job_id
            lease = await asyncio.to_thread(queue.take, ["ppo"], "w1", 60, 100)
            stream = watch.watch(jobs, hub, "alice", job_id, 0)
            assert isinstance(await anext(stream), JobRecord)
            assert [(await anext(stream)).seq for _ in range(2)] == [1, 2]  # PENDING, RUNNING
            live = asyncio.create_task(anext(stream))  # subscribed, waiting for seq 3
            await asyncio.to_thread(queue.log_line, lease, "info", "first")
            assert (await live).seq == 3
            for i in range(20):  # the reader does not read: its queue overflows
                await asyncio.to_thread(queue.log_line, lease, "info", f"line {i}")
            await asyncio.sleep(0.5)
            assert hub.num_watches == 1
            with pytest.raises(errors.ResourceExhausted) as caught:
                await anext(stream)
            await stream.aclose()
            assert hub.num_watches == 0
            return str(caught.value)
        finally:
            hub_task.cancel()
            await client.aclose()
            await hub_client.aclose()

    message = asyncio.run(go())
    assert "watch queue overflow" in message and "more than 5 events" in message
    assert message.endswith("reconnect with since_seq=3")


def test_trimmed_events_are_announced_not_skipped(service: Service, queue) -> None:
    job_id = submit(service.stub("alice"), tiny_ppo(2)).job_id
    lease = queue.take(["ppo"], "w1", 60, block_ms=100)
    assert lease is not None
    for i in range(10):
        queue.log_line(lease, "info", f"line {i}")
    queue.finish(lease, "SUCCEEDED", "", 3)
    # The stream's cap trimmed its oldest entries (seq 1..6 of 13).
    queue.redis.xtrim(keys.events(job_id), minid="7-0", approximate=False)
    client = Client(service.address, TOKEN_OF["alice"])
    events = [e for e in client.watch(job_id, since_seq=2) if not isinstance(e, Snapshot)]
    client.close()
    assert isinstance(events[0], EventsTrimmed)
    assert (events[0].first_seq, events[0].last_seq, events[0].seq) == (3, 6, 6)
    assert [e.seq for e in events[1:]] == list(range(7, 14))
    assert _describe(events[0]) == "events 3..6 trimmed (no longer retained by the server)"


def test_watch_since_seq_beyond_any_seq_is_invalid_argument(service) -> None:
    """since_seq is a uint64 on the wire, but no seq exceeds MAX_SEQ (HINCRBY): a larger one is
    INVALID_ARGUMENT naming the field, not a Redis error mid-stream; MAX_SEQ itself is served."""
    stub = service.stub("alice")
    job_id = submit(stub, tiny_ppo(1)).job_id
    for since in (keys.MAX_SEQ + 1, 2**64 - 1):
        with pytest.raises(grpc.RpcError) as err:
            next(stub.WatchJob(jobs_pb2.WatchJobRequest(job_id=job_id, since_seq=since)))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert f"since_seq: a seq in 0..{keys.MAX_SEQ}" in err.value.details()
    stream = stub.WatchJob(jobs_pb2.WatchJobRequest(job_id=job_id, since_seq=keys.MAX_SEQ))
    assert next(stream).HasField("snapshot")
    stream.cancel()


def test_watches_cancelled_right_after_their_snapshot_free_their_slots(service) -> None:
    """A cancel that lands while the watch is inside a Redis command can be swallowed by
    redis-py; the watch must still end (its slot freed, recorded CANCELLED) instead of waiting
    for events nobody reads. Eight quick cancels: before the fix most of them stayed open."""
    stub = service.stub("alice")
    metrics = service.thread.server.services.metrics
    hub = service.thread.server.services.hub
    for _ in range(8):
        job = submit(stub, tiny_ppo(1))
        stream = stub.WatchJob(jobs_pb2.WatchJobRequest(job_id=job.job_id, since_seq=job.last_seq))
        assert next(stream).HasField("snapshot")
        stream.cancel()
    deadline = time.monotonic() + 10
    while hub.open_streams("grpc") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hub.open_streams("grpc") == 0
    method = "/wildrobot.v1.JobService/WatchJob"
    assert metrics.registry.get_sample_value(
        "wildrobot_rpc_total", {"method": method, "code": "CANCELLED"}
    ) == 8


def test_the_stream_cap_is_shared_and_its_refusal_says_so(limited: Service) -> None:
    """WatchJob and the dashboard's SSE count against one cap; past it, gRPC answers
    RESOURCE_EXHAUSTED with `wildrobot-reason` and SSE a 429 whose JSON names the reason and
    when to retry, so a page can tell the user instead of showing "offline"."""
    from tests.dashboard.http_client import SseStream, call

    token = TOKEN_OF["alice"]
    job_id = submit(limited.stub("alice"), tiny_ppo(2)).job_id
    grpc_watch = open_watch(limited, "alice", job_id)
    sse = SseStream(limited.http_url, f"/api/jobs/{job_id}/events", token)
    try:
        assert sse.next().event == "snapshot"
        refused = call(limited.http_url, f"/api/jobs/{job_id}/events", token)
        assert refused.status == 429
        error = refused.json()["error"]
        assert error["code"] == "RESOURCE_EXHAUSTED"
        assert error["reason"] == errors.STREAM_CAP_REASON
        assert error["retry_after_s"] == errors.STREAM_CAP_RETRY_S
        assert refused.headers["retry-after"] == str(errors.STREAM_CAP_RETRY_S)
        assert "max_watches_per_tenant=2" in error["message"]
        with pytest.raises(grpc.RpcError) as caught:
            open_watch(limited, "alice", job_id)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        trailers = dict(caught.value.trailing_metadata() or ())
        assert trailers.get("wildrobot-reason") == errors.STREAM_CAP_REASON
    finally:
        sse.close()
        grpc_watch.cancel()
