"""An idle WatchJob is not cut by the server's ping policy: the SDK pings every 60 s while a
watch waits; the server allows pings that often (grpc's own 5-minute minimum answers the third
with GOAWAY too_many_pings). Real channels; the intervals are scaled down 30x here (the SDK's
60 s ping against the server's minimum is asserted separately), with the grpc default as the
baseline that must fail in the same run."""

from __future__ import annotations

import time

import grpc
import pytest

from tests.live_service import TOKEN_OF, AuthedStub, ServerThread, server_config
from tests.service.tiny_jobs import submit, tiny_ppo
from wildrobot.server.config import ServerConfig
from wildrobot.v1 import jobs_pb2

pytestmark = [pytest.mark.redis, pytest.mark.integration]

SCALE = 30  # production seconds per test second
GRPC_DEFAULT_MIN_PING_S = 300.0


def sdk_keepalive_time_ms() -> int:
    from wildrobot.clients.sdk import connection as sdk

    return dict(sdk._CHANNEL_OPTIONS)["grpc.keepalive_time_ms"]


def test_the_servers_ping_minimum_is_below_the_sdks_ping_interval() -> None:
    minimum_s = ServerConfig().min_client_ping_interval_s
    assert minimum_s * 1000 <= sdk_keepalive_time_ms() / 2  # margin for timer jitter
    assert sdk_keepalive_time_ms() < GRPC_DEFAULT_MIN_PING_S * 1000  # what the issue hit


def idle_watch(redis_url: str, tmp_path, server_min_ping_s: float, idle_s: float) -> str:
    """Opens a watch, lets it idle while the client pings, then cancels the job: returns what
    the watch saw next ("CANCELLED", or the error that ended it)."""
    config = server_config(
        redis_url, tmp_path, min_client_ping_interval_s=server_min_ping_s
    )
    thread = ServerThread(config).start()
    client_ping_ms = sdk_keepalive_time_ms() // SCALE
    options = [
        ("grpc.keepalive_time_ms", client_ping_ms),
        ("grpc.keepalive_timeout_ms", 20_000),
        # grpc's client holds pings without data to about one a minute after the first two:
        # no limit at the SDK's 60 s, but it would hide the scaled-down pings. Lift it here.
        ("grpc.http2.max_pings_without_data", 0),
    ]
    try:
        with grpc.insecure_channel(thread.address, options=options) as channel:
            stub = AuthedStub(channel, TOKEN_OF["alice"])
            job = submit(stub, tiny_ppo(1))
            stream = stub.WatchJob(
                jobs_pb2.WatchJobRequest(job_id=job.job_id, since_seq=job.last_seq),
                timeout=idle_s + 30,
            )
            assert next(stream).HasField("snapshot")
            time.sleep(idle_s)
            with grpc.insecure_channel(thread.address) as other:
                AuthedStub(other, TOKEN_OF["alice"]).CancelJob(
                    jobs_pb2.CancelJobRequest(job_id=job.job_id)
                )
            try:
                event = next(stream)
            except grpc.RpcError as exc:
                return f"{exc.code().name}: {exc.details()}"
            return jobs_pb2.JobState.Name(event.state.state).removeprefix("JOB_STATE_")
    finally:
        thread.stop()


@pytest.mark.slow
def test_an_idle_watch_outlives_many_client_pings(redis_url, tmp_path) -> None:
    # 7 s here is 3.5 minutes at production scale: 3 pings or more while nothing is sent.
    idle_s = 210 / SCALE
    production = ServerConfig().min_client_ping_interval_s
    assert idle_watch(redis_url, tmp_path / "a", production / SCALE, idle_s) == "CANCELLED"
    baseline = idle_watch(redis_url, tmp_path / "b", GRPC_DEFAULT_MIN_PING_S / SCALE, idle_s)
    assert baseline != "CANCELLED", "the grpc default did not cut the watch: the test proves nothing"
