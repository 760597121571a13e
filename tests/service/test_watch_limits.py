"""Issue 15, defect 11: watches are bounded (per-watch queue, watches per tenant) and never skip
events silently (a reconnect from a trimmed since_seq is told which events are gone)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.service.helpers import submit, tiny_ppo
from tests.service_fixtures import TOKEN_OF, ServerThread, Service, server_config
from wildrobot.clients import Client
from wildrobot.clients.commands.watch import _describe
from wildrobot.clients.types import EventsTrimmed, Log, Snapshot
from wildrobot.queue import keys
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


def test_a_slow_reader_is_dropped_and_the_sdk_resumes_without_loss(limited: Service, queue) -> None:
    job_id = submit(limited.stub("alice"), tiny_ppo(2)).job_id
    lease = queue.take(["ppo"], "w1", 60, block_ms=100)  # the reaper must not take it back
    assert lease is not None
    client = Client(limited.address, TOKEN_OF["alice"])
    reconnects: list[str] = []
    events = client.watch(job_id, on_reconnect=lambda seq, why: reconnects.append(why))
    assert isinstance(next(events), Snapshot)
    assert not isinstance(next(events), Snapshot)  # PENDING and RUNNING: the watch is live

    def flood() -> None:  # far more than the HTTP/2 window plus the 5-event queue
        for i in range(400):
            queue.log_line(lease, "info", f"{i:04d} " + "x" * 3000)
        queue.finish(lease, "SUCCEEDED", "", 3)

    writer = threading.Thread(target=flood)
    writer.start()
    writer.join(60)
    time.sleep(0.5)  # the slow reader comes back
    rest = list(events)
    logs = [e for e in rest if isinstance(e, Log)]
    assert [int(e.message[:4]) for e in logs] == list(range(400))  # none lost, none twice
    assert any("watch queue overflow" in why and "since_seq=" in why for why in reconnects)
    seqs = [e.seq for e in rest if not isinstance(e, Snapshot)]
    assert seqs == sorted(set(seqs))
    client.close()


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
