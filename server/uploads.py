"""Tenant-scoped trial inputs (UploadTrial, inline trials_npz) and the listing of a job's
files (ListArtifacts / DownloadArtifact by name).

Inputs live in `<artifact_dir>/tenants/<tenant>/inputs/<name>`: a tenant sees only its own. A
file is written to a temporary name and renamed into place, so a reader never sees half of it.
A job's listed files are those inside registered (fenced) outputs: checkpoints' exports and the
inverse-dynamics output folder of the newest registration, never a stale attempt's files.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from wildrobot import exports, tenant_files
from wildrobot.specs import MAX_ID_UPLOAD_BYTES, InverseDynamicsSpec, check_trial_name
from wildrobot.v1 import jobs_pb2

from . import errors
from .artifacts import CheckpointService

INLINE_PREFIX = "uploads"
_ZIP_MAGIC = b"PK\x03\x04"  # an .npz is a zip archive


def _not_npz(data: bytes) -> bool:
    return not data.startswith(_ZIP_MAGIC)


def tenant_inputs(artifact_dir: Path, tenant: str) -> Path:
    """The tenant's inputs folder (the worker resolves trial_names here too)."""
    try:
        return tenant_files.tenant_inputs(artifact_dir, tenant)
    except ValueError as exc:
        raise errors.PermissionDenied(str(exc)) from None


@dataclasses.dataclass(frozen=True)
class Upload:
    name: str
    size_bytes: int
    sha256: str


class UploadStore:
    def __init__(self, artifact_dir: Path, max_bytes: int = MAX_ID_UPLOAD_BYTES) -> None:
        self._artifact_dir = Path(artifact_dir).resolve()
        self.max_bytes = max_bytes

    def path(self, tenant: str, name: str) -> Path:
        try:
            check_trial_name(name)
        except ValueError as exc:
            raise errors.InvalidArgument(f"name: {exc}", ("name",)) from None
        root = tenant_inputs(self._artifact_dir, tenant)
        return root / name

    async def save(self, tenant: str, chunks: AsyncIterator[jobs_pb2.UploadChunk]) -> Upload:
        """Writes the streamed file; RESOURCE_EXHAUSTED past max_bytes, nothing kept then."""
        target: Path | None = None
        tmp: Path | None = None
        digest = hashlib.sha256()
        size = 0
        try:
            async for chunk in chunks:
                if not isinstance(chunk, jobs_pb2.UploadChunk):  # a safe deserializer's marker
                    raise errors.InvalidArgument("data: a chunk is not an UploadChunk", ("data",))
                if target is None:
                    target = self.path(tenant, chunk.name)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
                    handle = tmp.open("wb")
                elif chunk.name and chunk.name != target.relative_to(
                    tenant_inputs(self._artifact_dir, tenant)
                ).as_posix():
                    raise errors.InvalidArgument("name: only the first chunk names the file",
                                                 ("name",))
                if size == 0 and target.suffix == ".npz" and _not_npz(chunk.data):
                    raise errors.InvalidArgument(
                        "data: is not an .npz file (an .npz is a zip archive of named arrays)",
                        ("data",),
                    )
                size += len(chunk.data)
                if size > self.max_bytes:
                    raise errors.ResourceExhausted(
                        f"data: more than {self.max_bytes} bytes ({self.max_bytes // 2**20} MiB), "
                        "the limit of one uploaded trial",
                    )
                digest.update(chunk.data)
                handle.write(chunk.data)
            if target is None or tmp is None:
                raise errors.InvalidArgument("name: the upload sent no chunk", ("name",))
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            os.replace(tmp, target)
            tmp = None
        finally:
            if tmp is not None:
                handle.close()
                tmp.unlink(missing_ok=True)
        name = target.relative_to(tenant_inputs(self._artifact_dir, tenant)).as_posix()
        return Upload(name, size, digest.hexdigest())

    def store_bytes(self, tenant: str, data: bytes) -> str:
        """Stores inline bytes content-addressed; returns the name (same bytes, same name)."""
        digest = hashlib.sha256(data).hexdigest()
        name = f"{INLINE_PREFIX}/sha256-{digest[:32]}.npz"
        target = self.path(tenant, name)
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
            tmp.write_bytes(data)
            os.replace(tmp, target)
        return name

    def list(self, tenant: str) -> list[Upload]:
        root = tenant_inputs(self._artifact_dir, tenant)
        if not root.is_dir():
            return []
        found = []
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink() and not path.name.startswith("."):
                found.append(Upload(path.relative_to(root).as_posix(), path.stat().st_size, ""))
        return found

    def check_inline(self, spec: InverseDynamicsSpec) -> None:
        """INVALID_ARGUMENT naming the first inline trial that is not an .npz file."""
        for index, data in enumerate(spec.trials_npz):
            if _not_npz(data):
                field = f"spec.inverse_dynamics.trials_npz[{index}]"
                raise errors.InvalidArgument(
                    f"{field}: is not an .npz file (an .npz is a zip archive of named arrays)",
                    (field,),
                )

    def externalize(self, tenant: str, spec: InverseDynamicsSpec) -> InverseDynamicsSpec:
        """The spec with its inline trials_npz stored as uploads and named instead (the job
        record never carries the bytes). `spec` was validated; the names are ours."""
        if not spec.trials_npz:
            return spec
        self.check_inline(spec)
        names = tuple(self.store_bytes(tenant, data) for data in spec.trials_npz)
        return spec.model_copy(update={"trials_npz": (), "trial_names": names})

    def check_names(self, tenant: str, spec: InverseDynamicsSpec) -> None:
        """NOT_FOUND naming the first trial name that is not among the tenant's inputs."""
        for index, name in enumerate(spec.trial_names):
            path = self.path(tenant, name)
            if path.is_symlink() or not path.is_file():
                raise errors.NotFound(
                    f"spec.inverse_dynamics.trial_names[{index}]: {name!r} is not among your "
                    "uploaded inputs (UploadTrial / `wildrobot-client upload`)"
                )


@dataclasses.dataclass(frozen=True)
class JobFile:
    name: str  # relative to the job's folder
    kind: str  # exports.ArtifactKind value, "inverse_dynamics" or "tta_report"
    size_bytes: int
    step: int
    path: Path


async def job_files(
    checkpoints: CheckpointService, artifact_dir: Path, tenant: str, job_id: str
) -> list[JobFile]:
    """The files of registered outputs of a job (NOT_FOUND for unknown and foreign jobs)."""
    root = Path(artifact_dir).resolve()
    job_dir = root / job_id
    found: list[JobFile] = []
    registered = await checkpoints.list(tenant, job_id)
    newest_id: tuple[int, Path] | None = None
    newest_report: tuple[int, Path] | None = None
    for info in registered:
        folder = (root / info.path).resolve()
        if not folder.is_relative_to(job_dir) or not folder.is_dir():
            continue
        if "inverse_dynamics" in folder.relative_to(job_dir).parts:  # attempt-<n>/inverse_dynamics
            newest_id = (info.step, folder)  # registrations are sorted by step
            continue
        if "tta_report" in folder.relative_to(job_dir).parts:  # attempt-<n>/tta_report
            newest_report = (info.step, folder)
            continue
        for kind in exports.ArtifactKind:
            path = exports.artifact_path(folder, kind)
            if path.is_file() and not path.is_symlink():
                found.append(JobFile(path.relative_to(job_dir).as_posix(), kind.value,
                                     path.stat().st_size, info.step, path))
    if newest_id is not None:
        step, folder = newest_id
        for path in sorted(folder.glob("*.npz")):
            if path.is_file() and not path.is_symlink() and not path.name.startswith("."):
                found.append(JobFile(path.relative_to(job_dir).as_posix(), "inverse_dynamics",
                                     path.stat().st_size, step, path))
    if newest_report is not None:
        step, folder = newest_report
        for path in sorted([*folder.glob("*.json"), *folder.glob("*.png")]):
            if path.is_file() and not path.is_symlink() and not path.name.startswith("."):
                found.append(JobFile(path.relative_to(job_dir).as_posix(), "tta_report",
                                     path.stat().st_size, step, path))
    return found


KIND_TO_PROTO = {
    exports.ArtifactKind.ONNX.value: jobs_pb2.ARTIFACT_KIND_ONNX,
    exports.ArtifactKind.VIDEO.value: jobs_pb2.ARTIFACT_KIND_VIDEO,
    "inverse_dynamics": jobs_pb2.ARTIFACT_KIND_INVERSE_DYNAMICS,
    "tta_report": jobs_pb2.ARTIFACT_KIND_TTA_REPORT,
}


async def find_job_file(
    checkpoints: CheckpointService, artifact_dir: Path, tenant: str, job_id: str, name: str
) -> JobFile:
    for file in await job_files(checkpoints, artifact_dir, tenant, job_id):
        if file.name == name:
            return file
    raise errors.NotFound(f"name: job {job_id} has no file {name[:256]!r} (see ListArtifacts)")


async def file_chunks(path: Path, chunk_bytes: int) -> AsyncIterator[bytes]:
    with path.open("rb") as handle:
        while block := await asyncio.to_thread(handle.read, chunk_bytes):
            yield block
