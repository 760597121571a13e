"""Metric history and the event log of a job, read for the dashboard (no HTTP here).

The history is the `wr:job:<id>:metrics` stream: every metric event the worker wrote, under the
same seq as in the (capped) event stream, so a reader can take the history up to `last_seq` and
then follow the events after it (WatchJob, SSE) without a gap or a duplicate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from wildrobot.queue import keys
from wildrobot.queue.records import JobEvent

from . import errors
from .jobs import JobService

MAX_POINTS_PER_PAGE = 10_000
DEFAULT_POINTS_PER_PAGE = 5_000
MAX_LOG_EVENTS = 2_000
DEFAULT_LOG_EVENTS = 500
LOG_SCAN_BATCH = 1_000
LOG_SCAN_LIMIT = keys.EVENTS_MAXLEN * 2  # the stream holds about EVENTS_MAXLEN entries


@dataclass(frozen=True)
class MetricPoint:
    seq: int
    time_ms: int
    step: int
    wall_time_s: float
    attempt: int
    values: dict[str, float]

    @classmethod
    def from_entry(cls, entry_id: str, fields: dict[str, str]) -> MetricPoint:
        data = json.loads(fields["d"])
        return cls(
            seq=int(entry_id.split("-", 1)[0]),
            time_ms=int(fields.get("ts", 0)),
            step=int(data["step"]),
            wall_time_s=float(data.get("wall_time_s", 0.0)),
            attempt=int(data.get("attempt", 0)),
            values={k: float(v) for k, v in data.get("values", {}).items()},
        )


@dataclass(frozen=True)
class MetricPage:
    points: list[MetricPoint]
    last_seq: int  # the job's last event seq when the page was read
    more: bool  # points after the last one exist: ask again with after_seq = points[-1].seq


class HistoryService:
    def __init__(self, jobs: JobService) -> None:
        self._jobs = jobs

    async def metrics(
        self, tenant: str, job_id: str, *, after_seq: int = 0, limit: int = 0
    ) -> MetricPage:
        """Metric points with seq > after_seq, oldest first, at most `limit` (paged)."""
        if limit > MAX_POINTS_PER_PAGE or limit < 0:
            raise errors.InvalidArgument(f"limit: 0..{MAX_POINTS_PER_PAGE}", ("limit",))
        if not 0 <= after_seq <= keys.MAX_SEQ:
            raise errors.InvalidArgument(f"after: a seq in 0..{keys.MAX_SEQ}", ("after",))
        await self._jobs.get(tenant, job_id)  # NOT_FOUND for unknown and foreign jobs
        count = limit or DEFAULT_POINTS_PER_PAGE
        # One transaction: every metric event with seq <= last_seq is in the history already.
        async with self._jobs.redis.pipeline(transaction=True) as pipe:
            pipe.xrange(
                keys.metrics(job_id), min=f"({keys.event_id(after_seq)}", max="+", count=count + 1
            )
            pipe.hget(keys.job(job_id), "last_seq")
            entries, last_seq = await pipe.execute()
        points = [MetricPoint.from_entry(i, f) for i, f in entries[:count]]
        return MetricPage(points, int(last_seq or 0), more=len(entries) > count)

    async def log(
        self, tenant: str, job_id: str, *, until_seq: int | None = None, limit: int = DEFAULT_LOG_EVENTS
    ) -> list[JobEvent]:
        """The newest `limit` non-metric events (state, checkpoint, log) with seq <= until_seq,
        oldest first."""
        if not 0 < limit <= MAX_LOG_EVENTS:
            raise errors.InvalidArgument(f"limit: 1..{MAX_LOG_EVENTS}", ("limit",))
        if until_seq is not None and not 0 <= until_seq <= keys.MAX_SEQ:
            raise errors.InvalidArgument(f"until: a seq in 0..{keys.MAX_SEQ}", ("until",))
        await self._jobs.get(tenant, job_id)
        upper = "+" if until_seq is None else keys.event_id(until_seq)
        found: list[JobEvent] = []
        scanned = 0
        while len(found) < limit and scanned < LOG_SCAN_LIMIT:
            entries: list[tuple[str, Any]] = await self._jobs.redis.xrevrange(
                keys.events(job_id), max=upper, min="-", count=LOG_SCAN_BATCH
            )
            for entry_id, fields in entries:
                if fields.get("t") != "metrics":
                    found.append(JobEvent.from_entry(entry_id, fields))
                    if len(found) == limit:
                        break
            scanned += len(entries)
            if len(entries) < LOG_SCAN_BATCH:
                break
            upper = f"({entries[-1][0]}"
        return found[::-1]
