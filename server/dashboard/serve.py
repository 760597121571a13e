"""Runs the dashboard's ASGI app with uvicorn as a task on the front end's own asyncio loop.

In-process (not a separate `wildrobot dashboard` process) so the HTTP API shares the gRPC
front end's domain services, Redis pool and WatchHub: one blocking XREAD serves gRPC watches and
SSE streams alike, and nothing can make the two APIs disagree.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from ..errors import PortUnavailable

log = logging.getLogger(__name__)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers: the front end's main() owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpServer:
    def __init__(self, server: uvicorn.Server, sock: socket.socket, closing: asyncio.Event) -> None:
        self._server = server
        self._sock = sock
        self._closing = closing
        self.port: int = sock.getsockname()[1]
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]), name="http")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise RuntimeError("the dashboard's HTTP server stopped while starting")
            await asyncio.sleep(0.01)

    def close(self) -> None:
        """Releases the port of a server that never started."""
        self._sock.close()

    async def stop(self, grace_s: float) -> None:
        """Ends open event streams (clients reconnect elsewhere), then stops serving."""
        self._closing.set()
        self._server.should_exit = True
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, grace_s + 2)
            except (TimeoutError, asyncio.CancelledError):
                self._server.force_exit = True
                self._task.cancel()
                with contextlib.suppress(BaseException):
                    await self._task


def make_http_server(
    app: ASGIApp,
    host: str,
    port: int,
    closing: asyncio.Event,
    *,
    grace_s: float,
    tls: tuple[Path, Path] | None = None,
) -> HttpServer:
    """Binds host:port now (0 picks a free port; see `.port`); `start()` begins serving."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say they are TCP; without
    # it Nagle holds each response's body behind its headers until the client's delayed ACK (40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PortUnavailable(
            f"dashboard: cannot listen on {host}:{port} ({exc}); see --http-port"
        ) from exc
    sock.listen(1024)
    sock.setblocking(False)
    config = uvicorn.Config(
        app,
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="off",
        http="h11",
        timeout_graceful_shutdown=max(1, int(grace_s)),
        ssl_certfile=str(tls[0]) if tls else None,
        ssl_keyfile=str(tls[1]) if tls else None,
    )
    return HttpServer(_EmbeddedServer(config), sock, closing)
