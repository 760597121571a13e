"""Front-end metrics for operators (Prometheus): RPCs, latency, queue depth, jobs, leases, watches.

    wildrobot_rpc_total{method,code}              RPCs served, by full method and status code
    wildrobot_rpc_latency_seconds{method}         histogram of handling time (streams: whole call)
    wildrobot_queue_depth{kind}                   jobs waiting for a worker (PENDING + RECOVERING)
    wildrobot_jobs{state}                         jobs in Redis by state (sampled)
    wildrobot_running_leases                      leases held by workers right now
    wildrobot_lease_expiries_total                leases this front end's reaper found expired
    wildrobot_active_watches                      WatchJob streams (gRPC) open on this front end
    wildrobot_active_sse_streams                  dashboard event streams (SSE) open here
    wildrobot_http_requests_total{route,method,status}  dashboard HTTP requests, by route template
    wildrobot_http_latency_seconds{route}         histogram of HTTP handling time (SSE: whole stream)
    wildrobot_jobs_sample_truncated               1 when the last sample hit MAX_SAMPLED_JOBS

Queue depth and jobs by state come from a periodic sample of the job hashes (SCAN, one pipelined
HMGET per page), about MAX_SAMPLED_JOBS per pass at most, so a scrape never touches Redis itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import redis.asyncio as aioredis
import redis.exceptions
from grpc import aio
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from wildrobot.queue import keys
from wildrobot.specs import JobKind, JobState

from .interceptors import wrap_handler

log = logging.getLogger(__name__)

MAX_SAMPLED_JOBS = 200_000
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60)
WAITING = (JobState.PENDING.value, JobState.RECOVERING.value)


class ServerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.rpcs = Counter("wildrobot_rpc", "RPCs served", ["method", "code"], registry=r)
        self.latency = Histogram(
            "wildrobot_rpc_latency_seconds",
            "RPC handling time",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "wildrobot_queue_depth", "jobs waiting for a worker", ["kind"], registry=r
        )
        self.jobs = Gauge("wildrobot_jobs", "jobs in Redis by state", ["state"], registry=r)
        self.leases = Gauge("wildrobot_running_leases", "leases held by workers", registry=r)
        self.lease_expiries = Counter(
            "wildrobot_lease_expiries", "leases found expired by this front end", registry=r
        )
        self.watches = Gauge(
            "wildrobot_active_watches", "open WatchJob streams (gRPC)", registry=r
        )
        self.sse_streams = Gauge(
            "wildrobot_active_sse_streams", "open dashboard event streams (SSE)", registry=r
        )
        self.http_requests = Counter(
            "wildrobot_http_requests",
            "dashboard HTTP requests",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "wildrobot_http_latency_seconds",
            "dashboard HTTP handling time (event streams: the whole stream)",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.truncated = Gauge(
            "wildrobot_jobs_sample_truncated", "1: the last job sample was cut short", registry=r
        )
        for kind in JobKind:
            self.queue_depth.labels(kind.value).set(0)
        for state in JobState:
            self.jobs.labels(state.value).set(0)

    async def sample(self, client: aioredis.Redis) -> None:
        """One pass over the job hashes: jobs by state, queue depth by kind, leases held."""
        states: Tally[str] = Tally()
        waiting: Tally[str] = Tally()
        seen = 0
        pattern = keys.job("*")
        cursor = 0
        while seen < MAX_SAMPLED_JOBS:
            cursor, page = await client.scan(cursor, match=pattern, count=1000)
            page = [k for k in page if k.count(":") == pattern.count(":")]  # not events/ckpt
            if page:
                pipe = client.pipeline(transaction=False)
                for key in page:
                    pipe.hmget(key, "state", "kind")
                for state, kind in await pipe.execute():
                    if state is None:
                        continue
                    states[state] += 1
                    if state in WAITING:
                        waiting[kind or JobKind.PPO.value] += 1
                    seen += 1
            if cursor == 0:
                break
        for state in JobState:
            self.jobs.labels(state.value).set(states[state.value])
        for kind in JobKind:
            self.queue_depth.labels(kind.value).set(waiting[kind.value])
        self.leases.set(await client.zcard(keys.LEASES))
        self.truncated.set(1 if seen >= MAX_SAMPLED_JOBS else 0)

    async def run_sampler(self, client: aioredis.Redis, interval_s: float) -> None:
        while True:
            try:
                await self.sample(client)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
                log.warning("metrics: redis unavailable (%s)", exc)
            except Exception:  # noqa: BLE001 - metrics must never take the front end down
                log.exception("metrics sample failed")
            await asyncio.sleep(interval_s)


def _code_name(context: aio.ServicerContext, default: grpc.StatusCode) -> str:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int):  # some grpc versions keep the raw integer
        return next((c.name for c in grpc.StatusCode if c.value[0] == code), default.name)
    return default.name


_ENDING: set[asyncio.Task] = set()  # strong references to the cancelling tasks below


def _cancel_when_done(context: aio.ServicerContext) -> None:
    """Ends the calling streaming handler when its RPC ends (client cancel, deadline, lost
    connection). grpcio cancels the handler's task once; a cancel that lands inside a Redis
    command can be swallowed by redis-py, and a quiet watch would then hold its slot (and
    stay unrecorded) until its next event, however long that takes. So: cancel until done."""
    task = asyncio.current_task()
    if task is None:
        return

    async def cancel_until_done() -> None:
        while not task.done():
            task.cancel()
            await asyncio.sleep(0.1)

    def ended(_: object) -> None:
        if not task.done():
            ending = asyncio.get_running_loop().create_task(cancel_until_done())
            _ENDING.add(ending)
            ending.add_done_callback(_ENDING.discard)

    context.add_done_callback(ended)


class MetricsInterceptor(aio.ServerInterceptor):
    """Counts every RPC by method and final status code and times it (outermost interceptor)."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self._metrics = metrics

    def _record(self, method: str, code: str, start: float) -> None:
        self._metrics.rpcs.labels(method, code).inc()
        self._metrics.latency.labels(method).observe(time.perf_counter() - start)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return handler
        method = details.method

        def wrap_unary(behavior: Callable) -> Callable:
            async def call(request: Any, context: aio.ServicerContext) -> Any:
                start = time.perf_counter()
                try:
                    response = await behavior(request, context)
                except asyncio.CancelledError:  # the client went away (a coroutine-style stream)
                    self._record(method, grpc.StatusCode.CANCELLED.name, start)
                    raise
                except BaseException:
                    self._record(method, _code_name(context, grpc.StatusCode.UNKNOWN), start)
                    raise
                self._record(method, _code_name(context, grpc.StatusCode.OK), start)
                return response

            return call

        def wrap_stream(behavior: Callable) -> Callable:
            # Outermost, it drives the stream itself (coroutine style, context.write) instead
            # of being an async generator grpcio iterates: a client cancel that lands while a
            # response is being sent would leave such a generator suspended at `yield`,
            # unfinished (its watch slot held, its RPC unrecorded) until garbage collection.
            async def call(request: Any, context: aio.ServicerContext) -> None:
                start = time.perf_counter()
                _cancel_when_done(context)
                try:
                    async with contextlib.aclosing(behavior(request, context)) as stream:
                        async for item in stream:
                            await context.write(item)
                except asyncio.CancelledError:
                    self._record(method, grpc.StatusCode.CANCELLED.name, start)
                    raise
                except BaseException:
                    self._record(method, _code_name(context, grpc.StatusCode.UNKNOWN), start)
                    raise
                self._record(method, _code_name(context, grpc.StatusCode.OK), start)

            return call

        return wrap_handler(handler, wrap_unary, wrap_stream)
