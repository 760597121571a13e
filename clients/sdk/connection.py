"""The connection every part of the SDK shares: the channel, the token, deadlines and retries."""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, Self, TypeVar

import grpc

from wildrobot.v1 import dynamics_pb2_grpc, jobs_pb2_grpc

from .. import errors

T = TypeVar("T")

_CHANNEL_OPTIONS = (
    # Notice a half-open connection (a laptop going to sleep, a dead proxy) during a long watch.
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
)


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter for UNAVAILABLE on idempotent calls."""

    max_attempts: int = 5
    initial_backoff_s: float = 0.2
    max_backoff_s: float = 5.0
    multiplier: float = 2.0
    # watch/download: give up after the server has been unreachable this long without a break.
    reconnect_timeout_s: float = 60.0

    def backoff_s(self, attempt: int) -> float:
        """Sleep before retry number `attempt` (1-based), with +-20% jitter."""
        base = min(self.initial_backoff_s * self.multiplier ** (attempt - 1), self.max_backoff_s)
        return base * random.uniform(0.8, 1.2)


class Connection:
    """A channel to one WildRobot server with its stubs; the base of every part of `Client`."""

    def __init__(
        self,
        address: str,
        token: str | None = None,
        *,
        timeout_s: float = 15.0,
        tls: bool = False,
        root_certificates: bytes | None = None,
        retry: RetryPolicy | None = None,
        channel_options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        options = list(_CHANNEL_OPTIONS) + list(channel_options)
        if tls:
            credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self._channel = grpc.secure_channel(address, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(address, options=options)
        self._stub = jobs_pb2_grpc.JobServiceStub(self._channel)
        self._dynamics = dynamics_pb2_grpc.DynamicsServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _unary(
        self, method: str, request: Any, *, idempotent: bool, job_id: str | None = None
    ) -> Any:
        rpc = getattr(self._stub, method)
        return self._call_with_retry(
            lambda: rpc(request, timeout=self.timeout_s, metadata=self._metadata),
            method=method,
            job_id=job_id,
            attempts=self.retry.max_attempts if idempotent else 1,
        )

    def _retry_stream(self, fetch: Callable[[], T], job_id: str, method: str) -> T:
        return self._call_with_retry(
            fetch, method=method, job_id=job_id, attempts=self.retry.max_attempts
        )

    def _call_with_retry(
        self, call: Callable[[], T], *, method: str, job_id: str | None, attempts: int
    ) -> T:
        for attempt in range(1, attempts + 1):
            try:
                return call()
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.UNAVAILABLE and attempt < attempts:
                    time.sleep(self.retry.backoff_s(attempt))
                    continue
                raise errors.from_rpc_error(
                    exc, address=self.address, method=method, job_id=job_id
                ) from exc
        raise AssertionError("unreachable")
