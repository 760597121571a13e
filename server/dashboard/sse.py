"""Server-Sent Events over the WatchJob reader: one frame per job event, keep-alives between.

Frames: `event: snapshot` (the job, no id), then `id: <seq>` + `event: <kind>` + `data: <json>`
per event, `: keepalive` comments while idle, and `event: end` after a terminal state. A client
that reconnects sends `Last-Event-ID: <seq>` and gets exactly the events after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from wildrobot.queue.records import JobEvent, JobRecord

from . import payloads

RETRY_MS = 2000
KEEPALIVE = b": keepalive\n\n"


# Many clients watch the same job: each event is encoded once, not once per client.
_EVENT_FRAMES: OrderedDict[tuple[str, int], bytes] = OrderedDict()
EVENT_FRAME_CACHE = 4096


def event_frame(job_id: str, event: JobEvent) -> bytes:
    key = (job_id, event.seq)
    cached = _EVENT_FRAMES.get(key)
    if cached is None:
        cached = _EVENT_FRAMES[key] = frame(event.kind, payloads.event(event), event.seq)
        if len(_EVENT_FRAMES) > EVENT_FRAME_CACHE:
            _EVENT_FRAMES.popitem(last=False)
    return cached


def frame(kind: str, data: Any, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _next(iterator: AsyncIterator[Any]) -> Any:
    return await anext(iterator)


async def with_keepalives(
    items: AsyncIterator[Any], keepalive_s: float, closing: asyncio.Event
) -> AsyncIterator[Any]:
    """`items`, with KEEPALIVE yielded after each `keepalive_s` of silence; stops on `closing`.

    The next item is awaited in its own task, so a keep-alive never interrupts the reader.
    """
    stop = asyncio.ensure_future(closing.wait())
    pending: asyncio.Task | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(_next(items))
            done, _ = await asyncio.wait(
                {pending, stop}, timeout=keepalive_s, return_when=asyncio.FIRST_COMPLETED
            )
            if pending in done:
                task, pending = pending, None
                try:
                    item = task.result()
                except StopAsyncIteration:
                    return
                yield item
            elif stop in done:
                return
            else:
                yield KEEPALIVE
    finally:
        stop.cancel()
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        with contextlib.suppress(Exception):
            await items.aclose()  # type: ignore[attr-defined]


async def job_frames(
    snapshot: JobRecord,
    events: AsyncIterator[JobRecord | JobEvent],
    keepalive_s: float,
    closing: asyncio.Event,
) -> AsyncIterator[bytes]:
    """The SSE body: `snapshot` (already read, so errors map to a status), then `events`."""
    yield f"retry: {RETRY_MS}\n\n".encode()
    yield frame("snapshot", payloads.job(snapshot))
    ended = False
    async for item in with_keepalives(events, keepalive_s, closing):
        if isinstance(item, bytes):
            yield item
        elif isinstance(item, JobEvent):
            yield event_frame(snapshot.job_id, item)
            ended = item.is_terminal
        else:
            yield frame("snapshot", payloads.job(item))
    if ended or not closing.is_set():
        yield frame("end", {})
