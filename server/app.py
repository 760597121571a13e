"""Builds the front end: gRPC server, servicers (one list), interceptors, background tasks.

    server, port = await create_server(config)   # bound and started; port 0 picks a free one
    server.http_port                             # the dashboard's port (None when turned off)
    ...
    await server.stop(grace=5)                   # also the dashboard, reaper, health, watch hub

A new service adds one function to REGISTRATIONS: it receives the shared `Services` and the
grpc.aio server, adds its servicer, and returns its full service name (for health/reflection).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import redis.asyncio as aioredis
import redis.exceptions
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from wildrobot.monitoring import MetricsEndpoint
from wildrobot.v1 import jobs_pb2, jobs_pb2_grpc

from . import dynamics_servicer
from .archive import JobArchive
from .artifacts import CheckpointService
from .auth import TokenAuth
from .config import ServerConfig
from .dashboard.api import DashboardServices, make_app
from .dashboard.serve import HttpServer, make_http_server
from .errors import PortUnavailable
from .health import RedisHealth
from .history import HistoryService
from .interceptors import AuthInterceptor, ErrorInterceptor
from .jobs import JobService
from .metrics import MetricsInterceptor, ServerMetrics
from .reaper import Reaper, ensure_groups
from .reflection import enable_reflection
from .retention import Retention
from .servicer import JobServicer
from .uploads import UploadStore
from .watch import WatchHub

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Shared resources every servicer may use."""

    config: ServerConfig
    redis: aioredis.Redis
    jobs: JobService
    checkpoints: CheckpointService
    hub: WatchHub
    metrics: ServerMetrics
    history: HistoryService
    auth: TokenAuth
    uploads: UploadStore
    # Background work a service starts once serving: (name, async function of the health
    # servicer that sets its first status and returns the coroutine to run in the background);
    # and what it releases at stop.
    on_start: list[tuple[str, Callable[[Any], Any]]] = field(default_factory=list)
    on_stop: list[Callable[[], None]] = field(default_factory=list)


def _register_jobs(services: Services, server: aio.Server) -> str:
    config = services.config
    jobs_pb2_grpc.add_JobServiceServicer_to_server(
        JobServicer(
            services.jobs,
            services.checkpoints,
            services.hub,
            services.uploads,
            config.artifact_dir,
            config.chunk_bytes,
        ),
        server,
    )
    return jobs_pb2.DESCRIPTOR.services_by_name["JobService"].full_name


REGISTRATIONS: list[Callable[[Services, aio.Server], str]] = [_register_jobs, dynamics_servicer.register]


class WildRobotServer:
    """The grpc.aio server plus its background tasks; `stop` ends both."""

    def __init__(self, grpc_server: aio.Server, services: Services, redis_clients: list) -> None:
        self.grpc = grpc_server
        self.services = services
        self._redis_clients = redis_clients
        self._tasks: list[asyncio.Task] = []
        self.health = health.aio.HealthServicer()
        self.metrics_endpoint: MetricsEndpoint | None = None
        self.http: HttpServer | None = None

    @property
    def metrics_port(self) -> int | None:
        return None if self.metrics_endpoint is None else self.metrics_endpoint.port

    @property
    def http_port(self) -> int | None:
        return self.http.port if self.http is not None else None

    def _spawn(self, coro: object, name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))  # type: ignore[arg-type]

    async def stop(self, grace: float | None = None) -> None:
        """Health NOT_SERVING, then stop RPCs (in-flight ones get `grace` s), then the tasks."""
        cfg = self.services.config
        await self.health.enter_graceful_shutdown()
        await self.grpc.stop(cfg.grace_s if grace is None else grace)
        if self.http is not None:
            await self.http.stop(cfg.grace_s if grace is None else grace)
        pending = set(self._tasks)
        # Cancel again while a task lives on: redis-py can swallow a cancel that lands mid-command.
        for _ in range(10):
            if not pending:
                break
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=0.5)
        for task in pending:
            log.warning("background task %s did not stop", task.get_name())
        self._tasks.clear()
        for release in self.services.on_stop:
            release()
        if self.metrics_endpoint is not None:
            self.metrics_endpoint.stop()
            self.metrics_endpoint = None
        for client in self._redis_clients:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.aclose(), 2)

    async def wait_for_termination(self) -> None:
        await self.grpc.wait_for_termination()


async def create_server(config: ServerConfig) -> tuple[WildRobotServer, int]:
    """Builds, binds and starts the front end; returns it and the bound port."""
    # A pooled connection that died with a Redis restart is retried on a fresh one.
    retry = {
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.02), 3),
        "retry_on_error": [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
    }
    pool = aioredis.BlockingConnectionPool.from_url(
        config.redis_url,
        decode_responses=True,
        max_connections=config.redis_pool_size,
        timeout=10,
        socket_connect_timeout=2,
        health_check_interval=30,
        **retry,
    )
    client = aioredis.Redis(connection_pool=pool)
    # The watch hub holds one connection in a blocking XREAD; it gets its own client.
    hub_client = aioredis.Redis.from_url(config.redis_url, decode_responses=True, **retry)
    archive = JobArchive(config.artifact_dir)
    uploads = UploadStore(config.artifact_dir)
    jobs = JobService(
        client,
        cost_limits=config.cost_limits,
        max_pending_per_tenant=config.max_pending_jobs_per_tenant,
        archive=archive,
        artifact_dir=config.artifact_dir,
        uploads=uploads,
    )
    metrics = ServerMetrics()
    services = Services(
        config=config,
        redis=client,
        jobs=jobs,
        checkpoints=CheckpointService(jobs, config.artifact_dir, config.chunk_bytes),
        hub=WatchHub(
            hub_client,
            config.watch_block_ms,
            max_watches_per_tenant=config.max_watches_per_tenant,
            queue_events=config.watch_queue_events,
        ),
        metrics=metrics,
        history=HistoryService(jobs),
        auth=TokenAuth(config.tokens),
        uploads=uploads,
    )
    metrics.watches.set_function(lambda: services.hub.open_streams("grpc"))
    metrics.sse_streams.set_function(lambda: services.hub.open_streams("sse"))
    grpc_server = aio.server(
        interceptors=[
            MetricsInterceptor(metrics),
            ErrorInterceptor(),
            AuthInterceptor(services.auth),
        ],
        options=[
            ("grpc.max_receive_message_length", config.max_message_bytes),
            ("grpc.max_send_message_length", max(config.max_message_bytes, 2 * config.chunk_bytes)),
            ("grpc.so_reuseport", 0),
            *keepalive_options(config),
        ],
    )
    server = WildRobotServer(grpc_server, services, [client, hub_client])
    names = [register(services, grpc_server) for register in REGISTRATIONS]
    health_pb2_grpc.add_HealthServicer_to_server(server.health, grpc_server)
    enable_reflection(
        [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name], grpc_server
    )
    # Both ports are bound before anything serves: a taken one stops the start with a message
    # naming it, instead of a gRPC port that answers and then resets when the dashboard fails.
    try:
        if config.dashboard:
            server.http = _make_dashboard(services)
        port = _bind_grpc(grpc_server, config)
    except PortUnavailable:
        if server.http is not None:
            server.http.close()
        for each in (client, hub_client):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(each.aclose(), 2)
        raise
    try:
        await ensure_groups(client)
    except Exception as exc:  # noqa: BLE001 - the reaper retries; health says NOT_SERVING
        log.warning("redis not reachable at start (%s); serving NOT_SERVING until it is", exc)
    reaper = Reaper(
        client,
        max_retries=config.max_retries,
        orphan_after_s=config.orphan_after_s,
        on_expired=lambda job_id, state: metrics.lease_expiries.inc(),
        retention=Retention(client, archive, config.finished_job_ttl_s),
    )
    redis_health = RedisHealth(server.health, client, names)
    await redis_health.alive()
    await redis_health.check(timeout_s=2.0)
    await grpc_server.start()
    if server.http is not None:
        await server.http.start()
    server._spawn(services.hub.run(), "watch-hub")
    server._spawn(reaper.run(config.reaper_interval_s), "lease-reaper")
    server._spawn(redis_health.run(config.health_interval_s), "health")
    server._spawn(metrics.run_sampler(client, config.metrics_interval_s), "metrics-sampler")
    for name, start in services.on_start:  # start() reports its first status, then runs on
        server._spawn(await start(server.health), name)
    if config.metrics_port is not None:
        server.metrics_endpoint = MetricsEndpoint.start(
            metrics.registry, config.metrics_host, config.metrics_port
        )
    log.info("serving %s on %s:%d", ", ".join(names), config.host, port)
    if server.http is not None:
        log.info("dashboard on http%s://%s:%d/", "s" * _tls(config), config.host, server.http_port)
    return server, port


def _bind_grpc(grpc_server: aio.Server, config: ServerConfig) -> int:
    address = f"{config.host}:{config.port}"
    try:
        if _tls(config):
            assert config.tls_cert_file is not None and config.tls_key_file is not None
            credentials = grpc.ssl_server_credentials(
                [(config.tls_key_file.read_bytes(), config.tls_cert_file.read_bytes())]
            )
            port = grpc_server.add_secure_port(address, credentials)
        else:
            port = grpc_server.add_insecure_port(address)
    except RuntimeError as exc:  # grpcio: "Failed to bind to address ..."
        raise PortUnavailable(f"gRPC: cannot listen on {address} ({exc}); see --port") from exc
    if port == 0 and config.port != 0:  # older grpcio reports a failed bind as port 0
        raise PortUnavailable(f"gRPC: cannot listen on {address}; see --port")
    return port


def keepalive_options(config: ServerConfig) -> list[tuple[str, int]]:
    """The server's ping policy: clients may ping every `min_client_ping_interval_s`, with or
    without calls in flight (an idle watch sends no data for minutes)."""
    interval_ms = int(config.min_client_ping_interval_s * 1000)
    return [
        ("grpc.http2.min_ping_interval_without_data_ms", interval_ms),
        ("grpc.http2.min_time_between_pings_ms", interval_ms),
        ("grpc.keepalive_permit_without_calls", 1),
    ]


def _tls(config: ServerConfig) -> bool:
    return config.tls_cert_file is not None and config.tls_key_file is not None


def _make_dashboard(services: Services) -> HttpServer:
    config = services.config
    closing = asyncio.Event()
    app = make_app(
        DashboardServices(
            jobs=services.jobs,
            checkpoints=services.checkpoints,
            hub=services.hub,
            history=services.history,
            keepalive_s=config.sse_keepalive_s,
            closing=closing,
            metrics=services.metrics,
        ),
        services.auth,
    )
    tls = (config.tls_cert_file, config.tls_key_file) if _tls(config) else None
    return make_http_server(
        app,
        config.host,
        config.http_port,
        closing,
        grace_s=config.grace_s,
        tls=tls,  # type: ignore[arg-type]
    )
