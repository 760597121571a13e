"""Server-Sent Events: fed by the WatchJob reader, fast, and resumable with Last-Event-ID."""

from __future__ import annotations

import time

import pytest

from tests.dashboard.http_client import SseStream, call
from tests.dashboard.test_http_api import ALICE, BOB, take
from tests.service.tiny_jobs import submit, tiny_ppo

pytestmark = [pytest.mark.redis, pytest.mark.integration]


def test_metric_event_arrives_within_a_second_of_the_worker_write(service) -> None:
    job_id = submit(service.stub("alice"), tiny_ppo(50)).job_id
    queue, lease = take(service)
    stream = SseStream(service.http_url, f"/api/jobs/{job_id}/events", ALICE)
    try:
        assert stream.status == 200
        first = stream.next()
        assert first.event == "snapshot" and first.data["state"] == "RUNNING"
        assert [stream.next().data["state"] for _ in range(2)] == ["PENDING", "RUNNING"]
        delays = []
        for i in range(5):
            time.sleep(0.2)  # the stream is idle, blocked in the hub's XREAD
            start = time.monotonic()
            seq = queue.metrics(lease, 1280 * (i + 1), {"episode/reward": i + 0.5}, 1.0, 50.0)
            event = stream.next(timeout=5)
            delays.append(time.monotonic() - start)
            assert event.event == "metrics" and event.id == seq
            assert event.data["values"] == {"episode/reward": i + 0.5}
            assert event.data["step"] == 1280 * (i + 1)
        assert max(delays) < 1.0, delays
        assert service.thread.server.services.hub.num_watches == 1  # one shared reader
    finally:
        stream.close()


def test_resume_with_last_event_id_loses_nothing(service) -> None:
    job_id = submit(service.stub("alice"), tiny_ppo(50)).job_id
    queue, lease = take(service)
    written = [queue.metrics(lease, 1280 * (i + 1), {"x": float(i)}, 1.0, 1.0) for i in range(3)]
    stream = SseStream(service.http_url, f"/api/jobs/{job_id}/events?since=0", ALICE)
    stream.next()  # snapshot
    seen = [stream.next().id for _ in range(5)]  # PENDING, RUNNING, 3 metrics
    assert seen == [1, 2, *written]
    stream.close()
    # Written while the client is away: a log line, metrics, and the job's end.
    written.append(queue.log_line(lease, "info", "while away"))
    written += [queue.metrics(lease, 1280 * (i + 4), {"x": float(i)}, 1.0, 1.0) for i in range(3)]
    assert queue.finish(lease, "SUCCEEDED", "", 3) == "SUCCEEDED"
    resumed = SseStream(service.http_url, f"/api/jobs/{job_id}/events", ALICE, seen[-1])
    assert resumed.next().event == "snapshot"
    events = []
    while (event := resumed.next()).event != "end":
        events.append(event)
    resumed.close()
    assert [e.id for e in events] == [*written[3:], written[-1] + 1]
    assert [e.event for e in events] == ["log", "metrics", "metrics", "metrics", "state"]
    assert events[-1].data["state"] == "SUCCEEDED"
    # A bad Last-Event-ID, and another tenant's job, are answered before the stream starts.
    assert (
        call(
            service.http_url, f"/api/jobs/{job_id}/events", ALICE, headers={"last-event-id": "x"}
        ).status
        == 400
    )
    assert call(service.http_url, f"/api/jobs/{job_id}/events", BOB).status == 404


def test_idle_stream_gets_keepalives_and_a_gone_client_frees_its_watch(service) -> None:
    job_id = submit(service.stub("alice"), tiny_ppo(50)).job_id
    stream = SseStream(service.http_url, f"/api/jobs/{job_id}/events?since=1", ALICE)
    assert stream.next().event == "snapshot"
    with pytest.raises(TimeoutError):
        stream.next(timeout=2.5)  # nothing happens; keep-alives (every 1 s in tests) flow
    assert stream.keepalives >= 1
    assert service.thread.server.services.hub.num_watches == 1
    stream.close()
    deadline = time.monotonic() + 5
    while service.thread.server.services.hub.num_watches and time.monotonic() < deadline:
        time.sleep(0.05)
    assert service.thread.server.services.hub.num_watches == 0  # a gone client frees its watch
