"""The Prometheus scrape endpoint shared by the front end and the worker (prometheus-client).

Each process builds its metrics on its own `CollectorRegistry` (nothing global, nothing at
import), and `MetricsEndpoint.start` serves it at http://<host>:<port>/metrics from a daemon
thread. Port 0 binds a free port; `endpoint.port` says which.
"""

from __future__ import annotations

import logging
import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

log = logging.getLogger(__name__)


class MetricsEndpoint:
    def __init__(self, httpd: WSGIServer, thread: threading.Thread) -> None:
        self._httpd = httpd
        self._thread = thread

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @classmethod
    def start(cls, registry: CollectorRegistry, host: str, port: int) -> MetricsEndpoint:
        httpd, thread = start_http_server(port, addr=host, registry=registry)
        endpoint = cls(httpd, thread)
        log.info("prometheus metrics on http://%s:%d/metrics", host, endpoint.port)
        return endpoint

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)
