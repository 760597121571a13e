"""WatchJob: a snapshot, then the job's events from `since_seq`, ending at a terminal state.

One `WatchHub` per front end reads every watched event stream with a single blocking XREAD, so
hundreds of open watches cost one Redis connection, not one each.

Limits (per front end; ServerConfig):
- `max_watches_per_tenant` open watches per tenant; one more is RESOURCE_EXHAUSTED naming the cap.
- `watch_queue_events` events may wait for one slow reader; past that the watch ends with
  RESOURCE_EXHAUSTED "watch queue overflow ... reconnect with since_seq=N" (N: the last event the
  reader was sent), and nothing is lost: the reconnect catches up from the stream.
- Events the reader asked for that are no longer retained (trimmed at EVENTS_MAXLEN, or a
  retired job's archive without them) come as one `trimmed` event first: seq = the last missing
  seq, data {first_seq, last_seq}. A watch never skips events silently.
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
from wildrobot.specs import TERMINAL_STATES

from . import errors
from .jobs import JobService

log = logging.getLogger(__name__)

RECHECK_S = 5.0  # an idle watch re-reads the record this often (job deleted, events trimmed)
CATCH_UP_COUNT = 1000
DEFAULT_MAX_WATCHES_PER_TENANT = 100
DEFAULT_QUEUE_EVENTS = 10_000


@dataclass(eq=False)
class Subscription:
    key: str
    last_seq: int
    max_events: int = DEFAULT_QUEUE_EVENTS
    queue: asyncio.Queue[list[JobEvent]] = field(default_factory=asyncio.Queue)
    waiting: int = 0  # events in `queue`
    overflowed: bool = False

    def offer(self, events: list[JobEvent]) -> None:
        if self.overflowed:
            return
        if self.waiting + len(events) > self.max_events:
            self.overflowed = True  # the reader is told when it next takes from the queue
            self.queue.put_nowait([])
            return
        self.waiting += len(events)
        self.queue.put_nowait(events)

    async def take(self) -> list[JobEvent]:
        batch = await self.queue.get()
        self.waiting -= len(batch)
        return batch


class WatchHub:
    def __init__(
        self,
        client: aioredis.Redis,
        block_ms: int = 250,
        *,
        max_watches_per_tenant: int = DEFAULT_MAX_WATCHES_PER_TENANT,
        queue_events: int = DEFAULT_QUEUE_EVENTS,
    ) -> None:
        self._redis = client
        self._block_ms = block_ms
        self._subs: dict[str, set[Subscription]] = {}
        self._wakeup = asyncio.Event()
        self.max_watches_per_tenant = max_watches_per_tenant
        self.queue_events = queue_events
        self._open: dict[str, int] = {}
        self._open_by_api: dict[str, int] = {}

    @property
    def num_watches(self) -> int:
        return sum(len(subs) for subs in self._subs.values())

    def open_streams(self, api: str) -> int:
        """Watches open on this front end through `api` ("grpc": WatchJob, "sse": the
        dashboard's event streams); both count against one per-tenant cap."""
        return self._open_by_api.get(api, 0)

    @contextlib.contextmanager
    def slot(self, tenant: str, api: str = "grpc"):
        """One open watch of `tenant`; RESOURCE_EXHAUSTED past max_watches_per_tenant."""
        if self._open.get(tenant, 0) >= self.max_watches_per_tenant:
            raise errors.ResourceExhausted(
                f"max_watches_per_tenant={self.max_watches_per_tenant} reached: tenant "
                f"{tenant!r} has {self._open[tenant]} live streams open on this front end "
                "(WatchJob and dashboard event streams together); close one first",
                reason=errors.STREAM_CAP_REASON,
                retry_after_s=errors.STREAM_CAP_RETRY_S,
            )
        self._open[tenant] = self._open.get(tenant, 0) + 1
        self._open_by_api[api] = self._open_by_api.get(api, 0) + 1
        try:
            yield
        finally:
            self._open_by_api[api] -= 1
            self._open[tenant] -= 1
            if not self._open[tenant]:
                del self._open[tenant]

    def subscribe(self, key: str, last_seq: int) -> Subscription:
        sub = Subscription(key, last_seq, self.queue_events)
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
                        sub.offer(fresh)


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


def trimmed(first_seq: int, last_seq: int, time_ms: int) -> JobEvent:
    """Stands for events first_seq..last_seq that are no longer retained (seq = last_seq)."""
    return JobEvent(last_seq, "trimmed", time_ms, {"first_seq": first_seq, "last_seq": last_seq})


def _archived_events(archived: object, seq: int) -> list[JobEvent]:
    events = [
        JobEvent.from_entry(f"{e['seq']}-0", {k: v for k, v in e.items() if k != "seq"})
        for e in getattr(archived, "events", [])
    ]
    return [e for e in events if e.seq > seq]


async def watch(
    jobs: JobService, hub: WatchHub, tenant: str, job_id: str, since_seq: int, api: str = "grpc"
) -> AsyncIterator[JobRecord | JobEvent]:
    """Yields the current record, then events with seq > since_seq until a terminal state.

    Every seq after since_seq is accounted for: each event once, in order, or a `trimmed` event
    standing for a run of them that is gone."""
    if not 0 <= since_seq <= keys.MAX_SEQ:
        raise errors.InvalidArgument(f"since_seq: a seq in 0..{keys.MAX_SEQ}", ("since_seq",))
    with hub.slot(tenant, api):
        async with contextlib.aclosing(_watch(jobs, hub, tenant, job_id, since_seq)) as items:
            async for item in items:
                yield item


async def _watch(
    jobs: JobService, hub: WatchHub, tenant: str, job_id: str, since_seq: int
) -> AsyncIterator[JobRecord | JobEvent]:
    record = await jobs.get(tenant, job_id)
    yield record
    last = since_seq

    def in_order(event: JobEvent) -> list[JobEvent]:
        gap = [trimmed(last + 1, event.seq - 1, event.time_ms)] if event.seq > last + 1 else []
        return [*gap, event]

    if not await jobs.redis.exists(keys.job(job_id)) and jobs.archive is not None:
        archived = await jobs.archive.read(job_id)  # a retired job: what its archive holds
        for event in _archived_events(archived, last):
            for item in in_order(event):
                yield item
            last = event.seq
        if record.last_seq > last:
            yield trimmed(last + 1, record.last_seq, record.updated_at_ms)
        return
    async for event in _events_after(jobs.redis, job_id, last):
        for item in in_order(event):
            yield item
        last = event.seq
        if event.is_terminal:
            return
    if record.state in TERMINAL_STATES:
        if record.last_seq > last:  # asked for events the stream no longer has
            yield trimmed(last + 1, record.last_seq, record.updated_at_ms)
        return
    sub = hub.subscribe(keys.events(job_id), last)
    try:
        while True:
            _raise_if_cancel_was_swallowed()
            try:
                batch = await asyncio.wait_for(sub.take(), RECHECK_S)
            except TimeoutError:
                record = await jobs.get(tenant, job_id)
                if record.state in TERMINAL_STATES and record.last_seq <= sub.last_seq:
                    return
                continue
            if sub.overflowed:
                raise errors.ResourceExhausted(
                    f"watch queue overflow: more than {sub.max_events} events waited for this "
                    f"reader; reconnect with since_seq={last}"
                )
            for event in batch:
                for item in in_order(event):
                    yield item
                last = event.seq
                if event.is_terminal:
                    return
    finally:
        hub.unsubscribe(sub)


def _raise_if_cancel_was_swallowed() -> None:
    """grpcio cancels a cancelled stream's task once; redis-py can swallow that cancel when it
    lands inside a command, and the watch would wait on for events nobody reads (holding its
    slot). The task still says it is being cancelled: honour it here."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def run_hub(hub: WatchHub) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await hub.run()
