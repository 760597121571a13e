"""The HTTP/JSON API and the page: routes call the same domain services as the gRPC servicers.

Every `/api/` request passes `BearerAuth` (the gRPC interceptor's token -> tenant lookup) before a
route sees it; routes are thin: parse the query, one domain call, a JSON payload out. Domain
errors map to HTTP statuses in one place (`on_domain_error`), as the ErrorInterceptor does for
gRPC.

    GET  /api/whoami                                   {"tenant": ...}
    GET  /api/jobs?state=RUNNING&state=PENDING&kind=ppo&page_size=50&page_token=...
    GET  /api/jobs/{id}
    POST /api/jobs/{id}/cancel
    GET  /api/jobs/{id}/metrics?after=SEQ&limit=N      full metric history, paged by seq
    GET  /api/jobs/{id}/log?until=SEQ&limit=N          state/checkpoint/log events
    GET  /api/jobs/{id}/checkpoints
    GET  /api/jobs/{id}/checkpoints/{step|latest}/download   tar
    GET  /api/jobs/{id}/checkpoints/{step|latest}/artifacts/{onnx|video}   the exported file
    GET  /api/jobs/{id}/events?since=SEQ               Server-Sent Events (or Last-Event-ID)
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.exceptions
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from wildrobot import exports
from wildrobot.specs import JobKind, JobState

from .. import errors, watch
from ..artifacts import CheckpointService
from ..auth import TokenAuth
from ..history import DEFAULT_LOG_EVENTS, MAX_LOG_EVENTS, MAX_POINTS_PER_PAGE, HistoryService
from ..jobs import MAX_PAGE_SIZE, JobService
from ..metrics import ServerMetrics
from ..watch import WatchHub
from . import payloads, sse
from .http_metrics import HttpMetrics
from .params import MAX_SEQ, Choice, Int, Text, query

log = logging.getLogger(__name__)

SEQ = Int(0, MAX_SEQ, 0)  # an event seq: `since` and the Last-Event-ID header

STATIC_DIR = Path(__file__).parent / "static"
# The page loads nothing from anywhere else (no CDN): the browser enforces it.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; "
        "frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}
MEDIA_TYPES = {
    exports.ArtifactKind.ONNX: "application/octet-stream",
    exports.ArtifactKind.VIDEO: "video/mp4",
}
_STATUS: tuple[tuple[type[BaseException], int, str], ...] = (
    (errors.InvalidArgument, 400, "INVALID_ARGUMENT"),
    (errors.NotFound, 404, "NOT_FOUND"),
    (errors.FailedPrecondition, 409, "FAILED_PRECONDITION"),
    (errors.ResourceExhausted, 429, "RESOURCE_EXHAUSTED"),
    (errors.Unauthenticated, 401, "UNAUTHENTICATED"),
    (errors.PermissionDenied, 403, "PERMISSION_DENIED"),
    (errors.Unavailable, 503, "UNAVAILABLE"),
    (redis.exceptions.OutOfMemoryError, 503, "RESOURCE_EXHAUSTED"),  # Redis at maxmemory
    (redis.exceptions.ConnectionError, 503, "UNAVAILABLE"),
    (redis.exceptions.TimeoutError, 503, "UNAVAILABLE"),
)


@dataclass
class DashboardServices:
    jobs: JobService
    checkpoints: CheckpointService
    hub: WatchHub
    history: HistoryService
    keepalive_s: float
    closing: asyncio.Event  # set when the front end stops: open event streams end
    metrics: ServerMetrics | None = None  # HTTP requests counted and timed when given


def error_response(exc: BaseException) -> JSONResponse:
    for cls, status, code in _STATUS:
        if isinstance(exc, cls):
            message = errors.backend_message(exc)
            body: dict[str, Any] = {"code": code, "message": message}
            if isinstance(exc, errors.InvalidArgument) and exc.fields:
                body["fields"] = list(exc.fields)
            headers = {"www-authenticate": "Bearer"} if status == 401 else {}
            if isinstance(exc, errors.ResourceExhausted):
                if exc.reason:
                    body["reason"] = exc.reason
                if exc.retry_after_s is not None:
                    body["retry_after_s"] = exc.retry_after_s
                    headers["retry-after"] = str(exc.retry_after_s)
            return JSONResponse({"error": body}, status, headers=headers or None)
    log.error("unexpected error in the HTTP API", exc_info=exc)
    return JSONResponse({"error": {"code": "INTERNAL", "message": "internal error"}}, 500)


async def on_domain_error(request: Request, exc: Exception) -> Response:
    return error_response(exc)


class BearerAuth:
    """ASGI middleware: `/api/` needs `authorization: Bearer <token>`; sets state.tenant."""

    def __init__(self, app: ASGIApp, auth: TokenAuth) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            value = dict(scope["headers"]).get(b"authorization")
            try:
                tenant = self.auth.tenant_of(value.decode("latin-1") if value else None)
            except errors.Unauthenticated as exc:
                await error_response(exc)(scope, receive, send)
                return
            scope.setdefault("state", {})["tenant"] = tenant
        await self.app(scope, receive, send)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _step(request: Request) -> int | None:
    which = request.path_params["step"]
    if which != "latest" and not which.isdigit():
        raise errors.InvalidArgument("step: an integer or `latest`", ("step",))
    return None if which == "latest" else int(which)


def _artifact_kind(request: Request) -> exports.ArtifactKind:
    text = request.path_params["kind"]
    try:
        return exports.ArtifactKind(text.lower())
    except ValueError:
        allowed = ", ".join(k.value for k in exports.ArtifactKind)
        raise errors.InvalidArgument(f"kind: one of {allowed}", ("kind",)) from None


def make_app(services: DashboardServices, auth: TokenAuth) -> Starlette:
    jobs, checkpoints, history = services.jobs, services.checkpoints, services.history

    def tenant(request: Request) -> str:
        return request.state.tenant

    async def whoami(request: Request) -> Response:
        return JSONResponse({"tenant": tenant(request)})

    @query(
        state=Choice(JobState, many=True),
        kind=Choice(JobKind),
        page_size=Int(0, MAX_PAGE_SIZE, 0),
        page_token=Text(),
    )
    async def list_jobs(
        request: Request,
        state: frozenset[JobState],
        kind: JobKind | None,
        page_size: int,
        page_token: str,
    ) -> Response:
        records, token = await jobs.list(
            tenant(request), kind=kind, states=state, page_size=page_size, page_token=page_token
        )
        return JSONResponse({"jobs": [payloads.job(r) for r in records], "next_page_token": token})

    async def get_job(request: Request) -> Response:
        record = await jobs.get(tenant(request), request.path_params["job_id"])
        return JSONResponse(payloads.job(record))

    async def cancel_job(request: Request) -> Response:
        record = await jobs.cancel(tenant(request), request.path_params["job_id"])
        return JSONResponse(payloads.job(record))

    @query(after=Int(0, MAX_SEQ, 0), limit=Int(0, MAX_POINTS_PER_PAGE, 0))
    async def metrics(request: Request, after: int, limit: int) -> Response:
        page = await history.metrics(
            tenant(request), request.path_params["job_id"], after_seq=after, limit=limit
        )
        return JSONResponse(
            {
                "points": [payloads.metric_point(p) for p in page.points],
                "last_seq": page.last_seq,
                "more": page.more,
            }
        )

    @query(until=Int(0, MAX_SEQ), limit=Int(1, MAX_LOG_EVENTS, DEFAULT_LOG_EVENTS))
    async def event_log(request: Request, until: int | None, limit: int) -> Response:
        events = await history.log(
            tenant(request), request.path_params["job_id"], until_seq=until, limit=limit
        )
        return JSONResponse({"events": [payloads.event(e) for e in events]})

    async def list_checkpoints(request: Request) -> Response:
        infos = await checkpoints.list(tenant(request), request.path_params["job_id"])
        listed = [payloads.checkpoint(i, checkpoints.exports_of(i)) for i in infos]
        return JSONResponse({"checkpoints": listed})

    async def download(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        info, chunks = await checkpoints.download(tenant(request), job_id, _step(request))
        name = f"{job_id}-{info.step:012d}.tar"
        return StreamingResponse(
            chunks,
            media_type="application/x-tar",
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )

    async def artifact(request: Request) -> Response:
        job_id, kind = request.path_params["job_id"], _artifact_kind(request)
        info, path, chunks = await checkpoints.artifact(
            tenant(request), job_id, _step(request), kind
        )
        name = f"{job_id}-{info.step:012d}-{path.name}"
        return StreamingResponse(
            chunks,
            media_type=MEDIA_TYPES[kind],
            headers={
                "content-length": str(path.stat().st_size),
                "content-disposition": f'inline; filename="{name}"',
            },
        )

    @query(since=SEQ)
    async def events(request: Request, since: int) -> Response:
        # A reconnecting EventSource sends the last id it saw; it wins over the URL's `since`.
        last_event_id = request.headers.get("last-event-id")
        if last_event_id is not None:
            since = SEQ.parse("Last-Event-ID", last_event_id) or 0
        stream = watch.watch(
            jobs, services.hub, tenant(request), request.path_params["job_id"], since, "sse"
        )
        snapshot = await anext(stream)  # NOT_FOUND etc. become a status, not a broken stream
        return StreamingResponse(
            sse.job_frames(snapshot, stream, services.keepalive_s, services.closing),  # type: ignore[arg-type]
            media_type="text/event-stream",
            headers={"x-accel-buffering": "no"},
        )

    async def index(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html")

    async def api_not_found(request: Request) -> Response:
        return error_response(errors.NotFound(f"no API route {request.url.path}"))

    job = "/api/jobs/{job_id}"
    routes = [
        Route("/", index),
        Route("/api/whoami", whoami),
        Route("/api/jobs", list_jobs),
        Route(job, get_job),
        Route(job + "/cancel", cancel_job, methods=["POST"]),
        Route(job + "/metrics", metrics),
        Route(job + "/log", event_log),
        Route(job + "/checkpoints", list_checkpoints),
        Route(job + "/checkpoints/{step}/download", download),
        Route(job + "/checkpoints/{step}/artifacts/{kind}", artifact),
        Route(job + "/events", events),
        Route("/api/{rest:path}", api_not_found, methods=["GET", "POST"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            errors.DomainError: on_domain_error,
            redis.exceptions.ConnectionError: on_domain_error,
            redis.exceptions.TimeoutError: on_domain_error,
            redis.exceptions.OutOfMemoryError: on_domain_error,
            Exception: on_domain_error,  # logged, answered 500 INTERNAL with a generic message
        },
    )
    app.add_middleware(BearerAuth, auth=auth)
    app.add_middleware(SecurityHeaders)
    if services.metrics is not None:
        app.add_middleware(HttpMetrics, metrics=services.metrics, routes=routes)  # outermost: sees 401s too
    return app
