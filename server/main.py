"""`wildrobot-server`: the gRPC front end."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from wildrobot.logs import configure_logging

from .app import create_server
from .config import ServerConfig, load_config
from .errors import PortUnavailable

log = logging.getLogger("wildrobot.server")


async def serve(config: ServerConfig) -> None:
    server, port = await create_server(config)
    print(f"wildrobot-server listening on {config.host}:{port}", flush=True)
    if server.metrics_port is not None:
        print(
            f"wildrobot-server metrics on {config.metrics_host}:{server.metrics_port}", flush=True
        )
    if server.http_port is not None:
        scheme = "https" if config.tls_cert_file else "http"
        print(f"dashboard on {scheme}://{config.host}:{server.http_port}/", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down (grace %.1f s)", config.grace_s)
    await server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    config = load_config(sys.argv[1:] if argv is None else argv)
    configure_logging(config.log_format)
    if not config.tokens:
        log.warning("no tokens configured: every JobService call will be UNAUTHENTICATED")
    try:
        asyncio.run(serve(config))
    except PortUnavailable as exc:
        print(f"wildrobot-server: {exc}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
