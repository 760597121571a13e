"""The lease reaper (runs in every front end; each step is one atomic, idempotent script).

1. RUNNING/CANCELLING jobs whose lease expired (Redis clock): re-queued as RECOVERING with a new
   queue entry, or FAILED once `max_retries` leases were lost; a CANCELLING one ends CANCELLED.
2. Queue entries a worker read but never took (it died between XREADGROUP and the take script)
   are claimed with XAUTOCLAIM, acknowledged, deleted, and re-queued if the job still waits.
3. Finished jobs past their retention are archived and their keys deleted (server.retention).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import redis.asyncio as aioredis
import redis.exceptions

from wildrobot.queue import keys, scripts
from wildrobot.specs import JobKind

from .retention import Retention

log = logging.getLogger(__name__)

BATCH = 100


async def ensure_groups(client: aioredis.Redis) -> None:
    """Creates each kind's stream and consumer group (from the start, so nothing is skipped)."""
    for kind in JobKind:
        try:
            await client.xgroup_create(
                keys.queue(kind.value), keys.QUEUE_GROUP, id="0", mkstream=True
            )
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


class Reaper:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        max_retries: int,
        orphan_after_s: float,
        events_maxlen: int = keys.EVENTS_MAXLEN,
        on_expired: Callable[[str, str], None] | None = None,
        retention: Retention | None = None,
    ) -> None:
        self._redis = client
        self._retention = retention
        self._max_retries = max_retries
        self._orphan_ms = int(orphan_after_s * 1000)
        self._events_maxlen = events_maxlen
        self._on_expired = on_expired
        self._reap = client.register_script(scripts.REAP)
        self._orphan = client.register_script(scripts.ORPHAN)

    async def reap_expired(self) -> dict[str, str]:
        """One pass over expired leases; returns {job_id: new state}."""
        seconds, micros = await self._redis.time()
        now_ms = seconds * 1000 + micros // 1000
        expired = await self._redis.zrangebyscore(keys.LEASES, "-inf", now_ms, start=0, num=BATCH)
        outcomes: dict[str, str] = {}
        for job_id in expired:
            kind = await self._redis.hget(keys.job(job_id), "kind") or JobKind.PPO.value
            result = await self._reap(
                keys=[keys.job(job_id), keys.events(job_id), keys.LEASES, keys.queue(kind)],
                args=[job_id, self._max_retries, self._events_maxlen, keys.QUEUE_MAXLEN],
            )
            if result[0] == "ok":
                outcomes[job_id] = result[1]
                log.warning("lease of job %s expired: now %s", job_id, result[1])
                if self._on_expired is not None:
                    self._on_expired(job_id, result[1])
        return outcomes

    async def requeue_orphans(self) -> int:
        count = 0
        for kind in JobKind:
            queue = keys.queue(kind.value)
            reply = await self._redis.xautoclaim(
                queue, keys.QUEUE_GROUP, keys.REAPER_CONSUMER, self._orphan_ms, "0-0", count=BATCH
            )
            for msg_id, fields in reply[1]:
                job_id = (fields or {}).get("job_id", "")
                await self._orphan(
                    keys=[keys.job(job_id), queue],
                    args=[job_id, msg_id, keys.QUEUE_GROUP, keys.QUEUE_MAXLEN],
                )
                count += 1
        return count

    async def run(self, interval_s: float) -> None:
        while True:
            try:
                await ensure_groups(self._redis)
                await self.reap_expired()
                await self.requeue_orphans()
                if self._retention is not None:
                    await self._retention.retire_expired()
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
                log.warning("reaper: redis unavailable (%s)", exc)
            except Exception:  # noqa: BLE001 - the reaper must outlive one bad record
                log.exception("reaper pass failed")
            await asyncio.sleep(interval_s)
