"""Health through real channels: Check and Watch (client-side health checking and proxies use
Watch), liveness vs readiness."""

from __future__ import annotations

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
