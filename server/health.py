"""Health: readiness follows Redis, liveness follows the process.

    ""  and "readiness" and every service's name: SERVING while Redis answers PING, NOT_SERVING
        otherwise (checked every health_interval_s). Take traffic away, don't restart.
    "liveness": SERVING while this process answers at all (a hung loop times the probe out).
        A Redis outage leaves it SERVING, so the orchestrator does not restart every front end.

Kubernetes: `livenessProbe: grpc: {port: 50051, service: liveness}`, `readinessProbe: grpc:
{port: 50051, service: readiness}`; containers: `python -m wildrobot.server.healthcheck --live`
or `--ready` (server/healthcheck.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import redis.asyncio as aioredis
from grpc_health.v1 import health, health_pb2

log = logging.getLogger(__name__)

LIVENESS_SERVICE = "liveness"
READINESS_SERVICE = "readiness"


class RedisHealth:
    def __init__(
        self, servicer: health.aio.HealthServicer, client: aioredis.Redis, services: Sequence[str]
    ) -> None:
        self._servicer = servicer
        self._redis = client
        self._services = ("", READINESS_SERVICE, *services)
        self.serving: bool | None = None

    async def alive(self) -> None:
        """Liveness: SERVING from start-up until shutdown, whatever Redis does."""
        await self._servicer.set(LIVENESS_SERVICE, health_pb2.HealthCheckResponse.SERVING)

    async def check(self, timeout_s: float) -> bool:
        try:
            ok = bool(await asyncio.wait_for(self._redis.ping(), timeout=timeout_s))
        except Exception:  # noqa: BLE001 - any failure to PING means not serving
            ok = False
        if ok != self.serving:
            self.serving = ok
            status = (
                health_pb2.HealthCheckResponse.SERVING
                if ok
                else health_pb2.HealthCheckResponse.NOT_SERVING
            )
            for name in self._services:
                await self._servicer.set(name, status)
            log.log(logging.INFO if ok else logging.WARNING, "redis %s", "up" if ok else "down")
        return ok

    async def run(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            await self.check(max(interval_s, 1.0))
