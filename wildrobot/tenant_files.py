"""Where a tenant's files live in the artifact store (shared by the server and the workers)."""

from __future__ import annotations

import re
from pathlib import Path

_TENANT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def tenant_inputs(artifact_dir: Path, tenant: str) -> Path:
    """`<artifact_dir>/tenants/<tenant>/inputs`; ValueError for a name that cannot be a folder."""
    if not _TENANT.match(tenant) or ".." in tenant:
        raise ValueError(f"tenant {tenant[:64]!r} cannot hold files")
    return Path(artifact_dir).resolve() / "tenants" / tenant / "inputs"
