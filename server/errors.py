"""Domain errors. Domain code raises these; `interceptors.ErrorInterceptor` maps them to codes."""

from __future__ import annotations

import redis.exceptions
from pydantic import ValidationError

STORE_FULL = (
    "the job store is full (Redis reached its maxmemory): new work is refused until finished "
    "jobs are retired or the operator raises the limit; everything accepted so far is kept"
)


class DomainError(Exception):
    """Base of every error a caller can act on; the message is sent to the client as is."""


class InvalidArgument(DomainError):
    def __init__(self, message: str, fields: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.fields = fields

    @classmethod
    def from_validation(cls, error: ValidationError, prefix: str) -> InvalidArgument:
        """One line per violation: `<prefix>.<field>: <rule>`, e.g. `spec.ppo.num_envs: ...`."""
        fields = []
        lines = []
        for item in error.errors():
            loc = ".".join(str(part) for part in item["loc"])
            name = f"{prefix}.{loc}" if loc else prefix
            fields.append(name)
            lines.append(f"{name}: {item['msg']}")
        return cls("invalid argument: " + "; ".join(lines), tuple(fields))


class NotFound(DomainError):
    pass


class FailedPrecondition(DomainError):
    pass


class ResourceExhausted(DomainError):
    """A limit was reached. `reason` names which one, for clients that react to it (gRPC
    trailing metadata `wildrobot-reason`, HTTP `error.reason` and a Retry-After header);
    `retry_after_s`: when trying again makes sense."""

    def __init__(self, message: str, reason: str = "", retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after_s = retry_after_s


# The per-tenant cap on live streams (WatchJob and the dashboard's SSE, one count).
STREAM_CAP_REASON = "max_watches_per_tenant"
STREAM_CAP_RETRY_S = 10


class Unauthenticated(DomainError):
    pass


class PermissionDenied(DomainError):
    pass


class Unavailable(DomainError):
    pass


class PortUnavailable(OSError):
    """A port the front end was told to listen on cannot be bound (taken, or not allowed); not
    a domain error: it stops the start (`wildrobot-server` exits 2 with this message)."""


def backend_message(exc: BaseException) -> str:
    """What a caller is told about a backend failure that is not a domain error: the store
    being full is said plainly (nothing was written; retry later); anything else is
    "backend unavailable" (no internals leak)."""
    if isinstance(exc, DomainError):
        return str(exc)
    if isinstance(exc, redis.exceptions.OutOfMemoryError):
        return STORE_FULL
    return "backend unavailable"
