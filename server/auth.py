"""Bearer tokens -> tenants: the one lookup both the gRPC interceptor and the HTTP API use.

Only SHA-256 digests of the tokens are kept, and a presented token is compared against every one
of them with `hmac.compare_digest`, so neither memory nor timing gives a token away.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping

from . import errors

# Tenant names end up inside Redis keys (`wr:idx:<tenant>:<kind>`, `wr:idem:<tenant>:<id>`); a
# ':' would let one tenant's key equal another's, so names are checked when tokens are loaded.
TENANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
TENANT_NAME_RULE = "1-64 characters: letters, digits, '_', '.', '-', starting with a letter or digit"


def check_tenant_name(tenant: str) -> str:
    """Returns `tenant`; raises ValueError (naming the rule) when it is not a valid tenant name."""
    if not TENANT_NAME.match(tenant):
        raise ValueError(f"tenant name {tenant[:80]!r} is invalid ({TENANT_NAME_RULE})")
    return tenant


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class TokenAuth:
    """`authorization: Bearer <token>` -> the token's tenant, else `errors.Unauthenticated`."""

    def __init__(self, tokens: Mapping[str, str]) -> None:
        self._digests = [(_digest(token), check_tenant_name(t)) for token, t in tokens.items()]

    def tenant_of(self, authorization: str | None) -> str:
        """The tenant of an `authorization` header/metadata value (None: the caller sent none)."""
        if authorization is None:
            raise errors.Unauthenticated("missing `authorization: Bearer <token>`")
        scheme, _, token = str(authorization).partition(" ")
        presented = _digest(token.strip())
        tenant = None
        for digest, name in self._digests:  # every entry, no early exit: constant time
            if hmac.compare_digest(digest, presented) and scheme.lower() == "bearer":
                tenant = name
        if tenant is None:
            raise errors.Unauthenticated("invalid bearer token")
        return tenant
