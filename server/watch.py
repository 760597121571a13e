"""WatchJob: a snapshot, then the job's events from `since_seq`, ending at a terminal state.

One `WatchHub` per front end reads every watched event stream with a single blocking XREAD, so
hundreds of open watches cost one Redis connection, not one each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import redis.asyncio as aioredis
import redis.exceptions

from wildrobot.queue import keys
from wildrobot.queue.records import JobEvent, JobRecord
from wildrobot.server.jobs import JobService
from wildrobot.specs import TERMINAL_STATES

log = logging.getLogger(__name__)

RECHECK_S = 5.0  # an idle watch re-reads the record this often (job deleted, events trimmed)
CATCH_UP_COUNT = 1000


@dataclass(eq=False)
class Subscription:
    key: str
    last_seq: int
    queue: asyncio.Queue[list[JobEvent]] = field(default_factory=asyncio.Queue)


class WatchHub:
    def __init__(self, client: aioredis.Redis, block_ms: int = 250) -> None:
        self._redis = client
        self._block_ms = block_ms
        self._subs: dict[str, set[Subscription]] = {}
        self._wakeup = asyncio.Event()

    @property
    def num_watches(self) -> int:
        return sum(len(subs) for subs in self._subs.values())

    def subscribe(self, key: str, last_seq: int) -> Subscription:
        sub = Subscription(key, last_seq)
        self._subs.setdefault(key, set()).add(sub)
        self._wakeup.set()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.key)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.key]

    async def run(self) -> None:
        while True:
            if not self._subs:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            streams = {
                key: keys.event_id(min(sub.last_seq for sub in subs))
                for key, subs in self._subs.items()
            }
            try:
                replies = await self._redis.xread(streams, count=100, block=self._block_ms)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                await asyncio.sleep(0.5)
                continue
            for key, entries in replies or ():
                events = [JobEvent.from_entry(entry_id, fields) for entry_id, fields in entries]
                for sub in self._subs.get(key, ()):
                    fresh = [e for e in events if e.seq > sub.last_seq]
                    if fresh:
                        sub.last_seq = fresh[-1].seq
                        sub.queue.put_nowait(fresh)


async def _events_after(client: aioredis.Redis, job_id: str, seq: int) -> AsyncIterator[JobEvent]:
    while True:
        entries = await client.xrange(
            keys.events(job_id), min=f"({keys.event_id(seq)}", max="+", count=CATCH_UP_COUNT
        )
        for entry_id, fields in entries:
            event = JobEvent.from_entry(entry_id, fields)
            seq = event.seq
            yield event
        if len(entries) < CATCH_UP_COUNT:
            return


async def watch(
    jobs: JobService, hub: WatchHub, tenant: str, job_id: str, since_seq: int
) -> AsyncIterator[JobRecord | JobEvent]:
    """Yields the current record, then events with seq > since_seq until a terminal state."""
    record = await jobs.get(tenant, job_id)
    yield record
    last = since_seq
    async for event in _events_after(jobs.redis, job_id, last):
        last = event.seq
        yield event
        if event.is_terminal:
            return
    if record.state in TERMINAL_STATES:
        return
    sub = hub.subscribe(keys.events(job_id), last)
    try:
        while True:
            try:
                batch = await asyncio.wait_for(sub.queue.get(), RECHECK_S)
            except TimeoutError:
                record = await jobs.get(tenant, job_id)
                if record.state in TERMINAL_STATES and record.last_seq <= sub.last_seq:
                    return
                continue
            for event in batch:
                yield event
                if event.is_terminal:
                    return
    finally:
        hub.unsubscribe(sub)


async def run_hub(hub: WatchHub) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await hub.run()
