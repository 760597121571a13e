"""Bearer tokens -> tenants: the one lookup both the gRPC interceptor and the HTTP API use."""

from __future__ import annotations

from collections.abc import Mapping

from wildrobot.server import errors


class TokenAuth:
    """`authorization: Bearer <token>` -> the token's tenant, else `errors.Unauthenticated`."""

    def __init__(self, tokens: Mapping[str, str]) -> None:
        self._tokens = dict(tokens)

    def tenant_of(self, authorization: str | None) -> str:
        """The tenant of an `authorization` header/metadata value (None: the caller sent none)."""
        if authorization is None:
            raise errors.Unauthenticated("missing `authorization: Bearer <token>`")
        scheme, _, token = str(authorization).partition(" ")
        tenant = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if tenant is None:
            raise errors.Unauthenticated("invalid bearer token")
        return tenant
