"""ASGI middleware: every dashboard HTTP request counted by route template, method and status,
and timed (an event stream: from its request to its end)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..metrics import ServerMetrics

UNMATCHED = "unmatched"  # no route: one label for every unknown path (bounded cardinality)


class HttpMetrics:
    def __init__(self, app: ASGIApp, metrics: ServerMetrics, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    def _template(self, scope: Scope) -> str:
        """The route's path template: the router's match, or (a request answered before
        routing, e.g. 401) the first route matching it."""
        route = scope.get("route")
        if route is None:
            route = next((r for r in self.routes if r.matches(scope)[0] == Match.FULL), None)
        return getattr(route, "path", None) or UNMATCHED

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            template = self._template(scope)
            self.metrics.http_requests.labels(template, scope["method"], str(status)).inc()
            self.metrics.http_latency.labels(template).observe(time.perf_counter() - start)
