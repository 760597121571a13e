"""The two interceptors: bearer-token auth (sets the caller's tenant) and domain errors -> codes."""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import redis.exceptions
from grpc import aio

from . import errors
from .auth import TokenAuth
from .decoding import Undecodable, safe_deserializer

log = logging.getLogger(__name__)

_tenant: contextvars.ContextVar[str] = contextvars.ContextVar("wildrobot_tenant")

# Services anyone may call: health checks (load balancers) and reflection (grpcurl).
PUBLIC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

_CODES: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
    # Redis at maxmemory (noeviction) refuses writes: nothing was stored, the caller may retry.
    (redis.exceptions.OutOfMemoryError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (redis.exceptions.ConnectionError, grpc.StatusCode.UNAVAILABLE),
    (redis.exceptions.TimeoutError, grpc.StatusCode.UNAVAILABLE),
)


def current_tenant() -> str:
    """The tenant of the RPC being served (set by AuthInterceptor)."""
    return _tenant.get()


def wrap_handler(
    handler: grpc.RpcMethodHandler,
    wrap_unary: Callable,
    wrap_stream: Callable,
    wrap_deserializer: Callable = lambda deserializer: deserializer,
) -> Any:
    """A copy of `handler` whose behavior is wrapped. Every kind of RPC: a client-streaming
    one gets its request iterator where a unary one gets its request (an unwrapped kind would
    skip authentication and error mapping). `wrap_deserializer` applies to unary requests; the
    streaming-request handlers reject undecodable chunks themselves.

    A streaming-response behavior comes in grpcio's two styles: an async generator (yields its
    responses; `wrap_stream`) or a coroutine that writes them with `context.write` and returns
    None (grpc_health's Watch; `wrap_unary`, which awaits it). Each keeps its style through the
    wrapper, since grpcio picks how to drive a handler by whether it is an async generator.
    A generator wrapper closes the generator it wraps when it is closed itself
    (`contextlib.aclosing`), so a cancelled stream releases what it holds at once, not when
    the garbage collector finds it."""

    def streaming(behavior: Callable) -> Callable:
        return (wrap_stream if inspect.isasyncgenfunction(behavior) else wrap_unary)(behavior)

    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            wrap_unary(handler.unary_unary),
            request_deserializer=wrap_deserializer(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            streaming(handler.unary_stream),
            request_deserializer=wrap_deserializer(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(
            wrap_unary(handler.stream_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.stream_stream is not None:
        return grpc.stream_stream_rpc_method_handler(
            streaming(handler.stream_stream),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    raise TypeError(f"unknown kind of RPC handler: {handler!r}")


class AuthInterceptor(aio.ServerInterceptor):
    """Checks `authorization: Bearer <token>`; the token's tenant is `current_tenant()`."""

    def __init__(self, auth: TokenAuth) -> None:
        self._auth = auth  # the same lookup the dashboard's HTTP API uses

    def _tenant_of(self, metadata: Any) -> str:
        value = next((v for k, v in metadata or () if k == "authorization"), None)
        return self._auth.tenant_of(value)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or details.method.startswith(PUBLIC_PREFIXES):
            return handler
        try:
            tenant: str | None = self._tenant_of(details.invocation_metadata)
            failure: errors.Unauthenticated | None = None
        except errors.Unauthenticated as exc:
            tenant, failure = None, exc

        def wrap_unary(behavior: Callable) -> Callable:
            async def call(request: Any, context: aio.ServicerContext) -> Any:
                if failure is not None:
                    raise failure
                _tenant.set(tenant)
                return await behavior(request, context)

            return call

        def wrap_stream(behavior: Callable) -> Callable:
            async def call(request: Any, context: aio.ServicerContext) -> Any:
                if failure is not None:
                    raise failure
                _tenant.set(tenant)
                async with contextlib.aclosing(behavior(request, context)) as stream:
                    async for item in stream:
                        yield item

            return call

        return wrap_handler(handler, wrap_unary, wrap_stream)


async def _abort(context: aio.ServicerContext, exc: Exception, method: str) -> None:
    for cls, code in _CODES:
        if isinstance(exc, cls):
            message = errors.backend_message(exc)
            if isinstance(exc, errors.InvalidArgument) and exc.fields:
                context.set_trailing_metadata((("wildrobot-invalid-fields", ",".join(exc.fields)),))
            if isinstance(exc, errors.ResourceExhausted) and exc.reason:
                context.set_trailing_metadata((("wildrobot-reason", exc.reason),))
            await context.abort(code, message)
    log.exception("unexpected error in %s", method)
    await context.abort(grpc.StatusCode.INTERNAL, "internal error")


def _check_decoded(request: Any) -> None:
    if isinstance(request, Undecodable):
        raise errors.InvalidArgument(request.message, (request.field,))


class ErrorInterceptor(aio.ServerInterceptor):
    """Maps domain errors to status codes; anything unexpected becomes INTERNAL (logged here).

    It also swaps in deserializers that never raise (`decoding.safe_deserializer`), so a request
    whose bytes are not the method's message is INVALID_ARGUMENT, for every unary-request
    service (health too), instead of grpcio's UNKNOWN and a logged traceback.
    """

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
                try:
                    _check_decoded(request)
                    return await behavior(request, context)
                except aio.AbortError:
                    raise
                except Exception as exc:  # noqa: BLE001 - mapped or reported as INTERNAL
                    await _abort(context, exc, method)

            return call

        def wrap_stream(behavior: Callable) -> Callable:
            async def call(request: Any, context: aio.ServicerContext) -> Any:
                try:
                    _check_decoded(request)
                    async with contextlib.aclosing(behavior(request, context)) as stream:
                        async for item in stream:
                            yield item
                except aio.AbortError:
                    raise
                except Exception as exc:  # noqa: BLE001
                    await _abort(context, exc, method)

            return call

        return wrap_handler(handler, wrap_unary, wrap_stream, safe_deserializer)
