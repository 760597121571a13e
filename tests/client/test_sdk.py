"""SDK behaviour that needs no server: reconnecting watch, retries, error mapping, safe untar."""

from __future__ import annotations

import io
import tarfile

import grpc
import pytest

from wildrobot.clients import Client, JobNotFound, RetryPolicy, ServerUnreachable, UnsafeArchive
from wildrobot.clients.sdk import extract_tar
from wildrobot.clients.types import EventsTrimmed, Metrics, Snapshot, StateChanged
from wildrobot.v1 import jobs_pb2

FAST = RetryPolicy(initial_backoff_s=0.001, max_backoff_s=0.001, reconnect_timeout_s=1.0)


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str = "") -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class FakeCall:
    """A server stream: yields messages, then raises `error` (a dropped stream) if given."""

    def __init__(self, messages: list, error: Exception | None = None) -> None:
        self.messages, self.error = messages, error

    def __iter__(self):
        yield from self.messages
        if self.error is not None:
            raise self.error

    def cancel(self) -> None:
        pass


def snapshot(state: int, last_seq: int) -> jobs_pb2.JobEvent:
    return jobs_pb2.JobEvent(
        seq=0, snapshot=jobs_pb2.Job(job_id="j1", state=state, last_seq=last_seq)
    )


def metric(seq: int) -> jobs_pb2.JobEvent:
    return jobs_pb2.JobEvent(
        seq=seq, metrics=jobs_pb2.MetricPoint(step=seq * 100, values={"episode/reward": seq})
    )


def state(seq: int, value: int) -> jobs_pb2.JobEvent:
    return jobs_pb2.JobEvent(seq=seq, state=jobs_pb2.StateChange(state=value, attempt=1))


class FakeStub:
    def __init__(self, watch_calls: list[FakeCall] | None = None) -> None:
        self.watch_calls = watch_calls or []
        self.watch_requests: list[int] = []
        self.get_calls = 0
        self.cancel_calls = 0

    def WatchJob(self, request, metadata=()):  # noqa: N802 (the gRPC method name)
        self.watch_requests.append(request.since_seq)
        return self.watch_calls.pop(0)

    def GetJob(self, request, timeout=None, metadata=()):  # noqa: N802
        self.get_calls += 1
        assert timeout is not None, "every unary call carries a deadline"
        if self.get_calls < 3:
            raise FakeRpcError(grpc.StatusCode.UNAVAILABLE, "connection refused")
        return jobs_pb2.Job(job_id=request.job_id, state=jobs_pb2.JOB_STATE_RUNNING)

    def CancelJob(self, request, timeout=None, metadata=()):  # noqa: N802
        self.cancel_calls += 1
        raise FakeRpcError(grpc.StatusCode.UNAVAILABLE, "connection refused")


def make_client(stub: FakeStub) -> Client:
    client = Client("fake:1", "token", retry=FAST)
    client._stub = stub
    return client


def test_watch_reconnects_from_the_last_seq_without_loss_or_repeats() -> None:
    running, done = jobs_pb2.JOB_STATE_RUNNING, jobs_pb2.JOB_STATE_SUCCEEDED
    cut = FakeRpcError(grpc.StatusCode.UNAVAILABLE, "Socket closed")
    stub = FakeStub(
        [
            FakeCall([snapshot(running, 2), metric(1), metric(2), metric(3)], cut),
            FakeCall([], FakeRpcError(grpc.StatusCode.UNAVAILABLE, "connection refused")),
            # The server resends seq 3 (at-least-once); the client drops it.
            FakeCall([snapshot(running, 5), metric(3), metric(4)], cut),
            FakeCall([snapshot(running, 5), metric(5), state(6, done), metric(7)]),
        ]
    )
    reconnects: list[tuple[int, str]] = []
    events = list(make_client(stub).watch("j1", on_reconnect=lambda *a: reconnects.append(a)))
    seqs = [e.seq for e in events if not isinstance(e, Snapshot)]
    assert seqs == [1, 2, 3, 4, 5, 6]
    assert stub.watch_requests == [0, 3, 3, 4]
    assert reconnects == [(3, "Socket closed"), (3, "connection refused"), (4, "Socket closed")]
    assert isinstance(events[-1], StateChanged) and events[-1].done
    assert [e.values["episode/reward"] for e in events if isinstance(e, Metrics)] == [1, 2, 3, 4, 5]


def test_watch_resumes_after_a_watch_queue_overflow_and_shows_trimmed_events() -> None:
    running, done = jobs_pb2.JOB_STATE_RUNNING, jobs_pb2.JOB_STATE_SUCCEEDED
    overflow = FakeRpcError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "watch queue overflow: more than 5 events waited for this reader; "
        "reconnect with since_seq=2",
    )
    trimmed = jobs_pb2.JobEvent(seq=5, trimmed=jobs_pb2.EventsTrimmed(first_seq=3, last_seq=5))
    stub = FakeStub(
        [
            FakeCall([snapshot(running, 2), metric(1), metric(2)], overflow),
            FakeCall([snapshot(running, 6), trimmed, state(6, done)]),
        ]
    )
    reconnects: list[tuple[int, str]] = []
    events = list(make_client(stub).watch("j1", on_reconnect=lambda *a: reconnects.append(a)))
    assert stub.watch_requests == [0, 2]
    assert reconnects and reconnects[0][0] == 2 and "overflow" in reconnects[0][1]
    gone = [e for e in events if isinstance(e, EventsTrimmed)]
    assert [(e.first_seq, e.last_seq) for e in gone] == [(3, 5)]
    assert [e.seq for e in events if not isinstance(e, Snapshot)] == [1, 2, 5, 6]


def test_a_watch_cap_is_not_retried() -> None:
    capped = FakeRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, "max_watches_per_tenant=2 reached")
    stub = FakeStub([FakeCall([], capped), FakeCall([])])
    with pytest.raises(Exception, match="max_watches_per_tenant=2"):
        list(make_client(stub).watch("j1"))
    assert stub.watch_requests == [0]


def test_watch_ends_on_a_terminal_snapshot_with_nothing_newer() -> None:
    stub = FakeStub([FakeCall([snapshot(jobs_pb2.JOB_STATE_FAILED, 4)])])
    events = list(make_client(stub).watch("j1", since_seq=4))
    assert len(events) == 1 and events[0].job.state.value == "FAILED"


def test_watch_gives_up_naming_the_address() -> None:
    down = FakeRpcError(grpc.StatusCode.UNAVAILABLE, "connection refused")
    stub = FakeStub([FakeCall([], down) for _ in range(10_000)])
    with pytest.raises(ServerUnreachable, match="fake:1"):
        list(make_client(stub).watch("j1"))


def test_watch_unknown_job_is_not_retried() -> None:
    stub = FakeStub([FakeCall([], FakeRpcError(grpc.StatusCode.NOT_FOUND, "no such job"))])
    with pytest.raises(JobNotFound, match="j1"):
        list(make_client(stub).watch("j1"))
    assert stub.watch_requests == [0]


def test_idempotent_calls_retry_unavailable_and_cancel_does_not() -> None:
    stub = FakeStub()
    client = make_client(stub)
    assert client.get("j1").state.value == "RUNNING"
    assert stub.get_calls == 3
    with pytest.raises(ServerUnreachable, match="fake:1"):
        client.cancel("j1")
    assert stub.cancel_calls == 1


def _tar(*members: tarfile.TarInfo, data: bytes = b"x") -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for member in members:
            if member.isfile():
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
            else:
                tar.addfile(member)
    buffer.seek(0)
    return buffer


def test_extract_tar_writes_a_normal_checkpoint(tmp_path) -> None:
    folder = tarfile.TarInfo("000000001000")
    folder.type = tarfile.DIRTYPE
    names = extract_tar(_tar(folder, tarfile.TarInfo("000000001000/params")), tmp_path)
    assert names == ["000000001000", "000000001000/params"]
    assert (tmp_path / "000000001000" / "params").read_bytes() == b"x"


@pytest.mark.parametrize("name", ["/etc/passwd", "../escape", "a/../../escape", "ok/../.."])
def test_extract_tar_rejects_paths_outside(tmp_path, name: str) -> None:
    with pytest.raises(UnsafeArchive):
        extract_tar(_tar(tarfile.TarInfo("fine"), tarfile.TarInfo(name)), tmp_path / "out")
    assert not (tmp_path / "out" / "fine").exists(), "nothing is written when one member is bad"


def test_extract_tar_rejects_links(tmp_path) -> None:
    link = tarfile.TarInfo("params")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    with pytest.raises(UnsafeArchive, match="link"):
        extract_tar(_tar(link), tmp_path)
