"""Start-up warm-up of the common InverseDynamics buckets: in the background, reported honestly
under its own health name, and the programs it made are the ones calls then use."""

from __future__ import annotations

import time

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.live_service import ServerThread, server_config
from wildrobot.server.dynamics import WARMUP_HEALTH_NAME

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def _status(channel_stub, name: str) -> int:
    return channel_stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status


def test_warm_up_reports_not_serving_until_the_buckets_are_compiled(redis_url, tmp_path):
    import grpc

    config = server_config(redis_url, tmp_path, dynamics_warm_buckets=(256,))
    thread = ServerThread(config).start()
    try:
        with grpc.insecure_channel(thread.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            seen = [_status(health, WARMUP_HEALTH_NAME)]
            # The RPCs serve meanwhile: the server is SERVING as a whole.
            assert _status(health, "") == health_pb2.HealthCheckResponse.SERVING
            deadline = time.monotonic() + 240
            while seen[-1] != health_pb2.HealthCheckResponse.SERVING:
                assert time.monotonic() < deadline, "warm-up never finished"
                time.sleep(0.5)
                seen.append(_status(health, WARMUP_HEALTH_NAME))
        assert seen[0] == health_pb2.HealthCheckResponse.NOT_SERVING
        programs = _programs(thread)
        assert programs.compiles == 2  # bucket 256 in float32 and float64
    finally:
        thread.stop()


def _programs(thread):
    """The running DynamicsService's program cache (found through the stop hooks it left)."""
    for release in thread.server.services.on_stop:
        owner = getattr(release, "__self__", None)
        if owner is not None and hasattr(owner, "programs"):
            return owner.programs
    raise AssertionError("no inverse-dynamics service registered")
