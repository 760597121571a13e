"""Health through real channels: Check and Watch (client-side health checking and proxies use
Watch), liveness vs readiness."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING


def test_health_watch_streams_the_status_of_every_service(service) -> None:
    health = health_pb2_grpc.HealthStub(service.channel())
    for name in ("", "wildrobot.v1.JobService", "wildrobot.v1.DynamicsService"):
        stream = health.Watch(health_pb2.HealthCheckRequest(service=name), timeout=10)
        first = next(stream)
        assert first.status == SERVING, name
        stream.cancel()
    unknown = health.Watch(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
    assert next(unknown).status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
    unknown.cancel()
    # The server still answers afterwards (the cancelled watches ended cleanly).
    assert health.Check(health_pb2.HealthCheckRequest(service="")).status == SERVING


def test_health_watch_is_counted_as_a_stream(service) -> None:
    """The coroutine-style Watch goes through the metrics interceptor: a client cancel is
    CANCELLED, not UNKNOWN or INTERNAL."""
    import time

    health = health_pb2_grpc.HealthStub(service.channel())
    stream = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=10)
    assert next(stream).status == SERVING
    stream.cancel()
    rpcs = service.thread.server.services.metrics.rpcs
    method = "/grpc.health.v1.Health/Watch"
    deadline = time.monotonic() + 5
    while rpcs.labels(method, "CANCELLED")._value.get() < 1:
        assert time.monotonic() < deadline, "a cancelled Watch was not recorded as CANCELLED"
        time.sleep(0.05)
    for code in ("UNKNOWN", "INTERNAL"):
        assert rpcs.labels(method, code)._value.get() == 0


def test_liveness_stays_serving_while_redis_is_down_and_readiness_does_not(tmp_path) -> None:
    """A Redis outage takes traffic away (readiness) without restarting the front end
    (liveness), for the native gRPC probe names and for `healthcheck --live/--ready`."""
    import time

    from tests.conftest import RedisServer
    from tests.live_service import ServerThread, server_config
    from wildrobot.server import healthcheck

    private = RedisServer(tmp_path)
    private.start()
    thread = ServerThread(server_config(private.url, tmp_path)).start()
    channel = grpc.insecure_channel(thread.address)
    health = health_pb2_grpc.HealthStub(channel)

    def status(service: str) -> int:
        return health.Check(health_pb2.HealthCheckRequest(service=service)).status

    def wait_ready(want: int) -> None:
        deadline = time.monotonic() + 10
        while status("readiness") != want:
            assert time.monotonic() < deadline, f"readiness stayed {status('readiness')}"
            time.sleep(0.1)

    try:
        assert status("liveness") == status("readiness") == status("") == SERVING
        assert healthcheck.main(["--live", thread.address]) == 0
        assert healthcheck.main(["--ready", thread.address]) == 0
        private.stop()
        wait_ready(health_pb2.HealthCheckResponse.NOT_SERVING)
        assert status("") == health_pb2.HealthCheckResponse.NOT_SERVING
        assert status("liveness") == SERVING
        assert healthcheck.main(["--live", thread.address]) == 0
        assert healthcheck.main(["--ready", thread.address]) == 1
        assert healthcheck.main([thread.address]) == 1  # the default is readiness
        live = health.Watch(health_pb2.HealthCheckRequest(service="liveness"), timeout=10)
        assert next(live).status == SERVING
        live.cancel()
        private.start()
        wait_ready(SERVING)
        assert healthcheck.main(["--ready", thread.address]) == 0
    finally:
        channel.close()
        thread.stop()
        private.stop()
