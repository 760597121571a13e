"""Typed client errors: what a caller (or the CLI) can catch and act on.

Every RPC failure is mapped here, in one place, from its gRPC status code. The messages are meant
for a person: they name the address, the job or the spec field involved.
"""

from __future__ import annotations

import re

import grpc


class ClientError(Exception):
    """Base of every error the SDK raises."""


class ServerUnreachable(ClientError):
    def __init__(self, address: str, detail: str = "") -> None:
        hint = f" ({detail})" if detail else ""
        super().__init__(
            f"cannot reach the WildRobot server at {address}{hint}; is it running? "
            "(set the address with --address, WILDROBOT_ADDRESS or the config file)"
        )
        self.address = address


class DeadlineExceeded(ClientError):
    def __init__(self, address: str, method: str) -> None:
        super().__init__(f"{method}: the server at {address} did not answer in time")
        self.address = address
        self.method = method


class AuthError(ClientError):
    """The server refused the token (missing, unknown or expired)."""


class PermissionDenied(AuthError):
    """The token is valid but may not do this (another tenant's job, for example)."""


class InvalidSpec(ClientError):
    """The server (or the client's own parsing) rejected a spec field.

    `field` and `rule` come from the first violation; `violations` holds all (field, rule) pairs.
    """

    def __init__(self, message: str, violations: list[tuple[str | None, str]] | None = None):
        super().__init__(message)
        self.violations = violations or [(None, message)]
        self.field, self.rule = self.violations[0]


class InvalidRequest(ClientError):
    """The server rejected an argument of a call that carries no spec (ListJobs' page_size or
    page_token, an InverseDynamics input, an upload's name or data, ...). `field` and `rule` come
    from the first violation; `violations` holds all (field, rule) pairs."""

    def __init__(self, message: str, violations: list[tuple[str | None, str]] | None = None):
        super().__init__(message)
        self.violations = violations or [(None, message)]
        self.field, self.rule = self.violations[0]


# The calls whose INVALID_ARGUMENT is about a job spec (SubmitJob, dry runs included).
SPEC_METHODS = frozenset({"SubmitJob"})


class JobNotFound(ClientError):
    def __init__(self, job_id: str, detail: str = "") -> None:
        super().__init__(detail or f"no job {job_id!r}")
        self.job_id = job_id


class CheckpointNotFound(ClientError):
    """The job has no checkpoint (at the requested step)."""


class ExportNotFound(ClientError):
    """The checkpoint has no exported file of that kind (ONNX policy, video) on the server."""


class ExportFailed(ClientError):
    """Making an export here from a downloaded checkpoint failed (e.g. no video for PointMass)."""


class FailedPrecondition(ClientError):
    """The job is not in a state that allows this (e.g. cancelling a finished job)."""


class QuotaExceeded(ClientError):
    """RESOURCE_EXHAUSTED: too many jobs or requests for this tenant."""


class ServerError(ClientError):
    """Anything else the server answered (INTERNAL, UNKNOWN, ...)."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.code = code


class UnsafeArchive(ClientError):
    """A downloaded checkpoint archive had a member that would land outside the target folder."""


# The server sends "invalid argument: spec.ppo.num_envs: Input should be ...; spec.ppo.seed: ...";
# the "invalid argument:" / "spec." / "ppo." (or "amp.", "tta_eval.", "inverse_dynamics.")
# prefixes are optional here.
_VIOLATION = re.compile(
    r"^\s*(?:invalid (?:argument|spec|request):\s*)?(?P<field>[A-Za-z_][\w.\[\]]*)\s*:\s*(?P<rule>.+?)\s*$",
    re.IGNORECASE,
)
_SPEC_PREFIXES = ("spec.", "ppo.", "amp.", "tta_eval.", "inverse_dynamics.")


def _field_name(raw: str) -> str | None:
    """`spec.ppo.num_envs` -> `num_envs`; the spec itself (a cross-field rule) -> None."""
    for prefix in _SPEC_PREFIXES:
        if raw.startswith(prefix):
            raw = raw[len(prefix) :]
    return None if raw in ("spec", "ppo", "amp", "tta_eval", "inverse_dynamics") else raw


def parse_violations(message: str) -> list[tuple[str | None, str]]:
    """(field, rule) pairs from an INVALID_ARGUMENT message; (None, message) when none parse."""
    violations: list[tuple[str | None, str]] = []
    for part in re.split(r"[;\n]", message):
        match = _VIOLATION.match(part)
        if match:
            violations.append((_field_name(match["field"]), match["rule"]))
    return violations or [(None, message.strip())]


def from_rpc_error(
    error: grpc.RpcError, *, address: str, method: str, job_id: str | None = None
) -> ClientError:
    """The typed error for a failed call to `method` at `address`."""
    code = error.code() if hasattr(error, "code") else None
    detail = (error.details() if hasattr(error, "details") else None) or str(error)
    if code == grpc.StatusCode.UNAVAILABLE:
        return ServerUnreachable(address, detail)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(address, method)
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return AuthError(
            f"the server at {address} refused the token ({detail}); "
            "check --token, WILDROBOT_TOKEN or the config file"
        )
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return PermissionDenied(f"permission denied: {detail}")
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        if method in SPEC_METHODS:
            return InvalidSpec(detail, parse_violations(detail))
        return InvalidRequest(f"{method}: {detail}", parse_violations(detail))
    if code == grpc.StatusCode.NOT_FOUND:
        if method in SPEC_METHODS and detail.startswith("spec."):
            # A spec field names something that is not there (an uploaded trial, a motion).
            return InvalidSpec(detail, parse_violations(detail))
        if method == "DownloadArtifact" and " export for " in detail:
            return ExportNotFound(detail)
        if (
            method in ("ListCheckpoints", "DownloadCheckpoint", "DownloadArtifact")
            and "checkpoint" in detail.lower()
        ):
            return CheckpointNotFound(detail)
        named = job_id is None or job_id in detail
        return JobNotFound(job_id or "", detail if named else f"no job {job_id!r}: {detail}")
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return FailedPrecondition(detail)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return QuotaExceeded(detail)
    name = code.name if code is not None else "UNKNOWN"
    return ServerError(f"{method} failed on the server at {address}: {name}: {detail}", code)
