"""Checkpoints: the registered list (Redis), a checkpoint directory streamed as a tar, and the
files exported from a checkpoint (ONNX policy, rollout video) streamed as they are."""

from __future__ import annotations

import asyncio
import dataclasses
import tarfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from wildrobot import exports
from wildrobot.queue import keys
from wildrobot.queue.records import CheckpointRecord, best_checkpoint

from . import errors
from .jobs import JobService

_BLOCK = tarfile.BLOCKSIZE  # 512
_RECORD = tarfile.RECORDSIZE  # 10240


def tar_stream(root: Path, arcname: str, chunk_bytes: int) -> Iterator[bytes]:
    """An uncompressed tar of `root` (files and folders, sorted), in chunks of ~chunk_bytes.

    Written block by block rather than through tarfile's writer, so nothing is buffered whole.
    """
    buffer = bytearray()
    written = 0
    paths = [root, *sorted(root.rglob("*"))]
    for path in paths:
        if path.is_symlink() or not (path.is_dir() or path.is_file()):
            continue  # a checkpoint holds plain files; anything else is not sent
        info = tarfile.TarInfo(arcname if path == root else f"{arcname}/{path.relative_to(root)}")
        stat = path.stat()
        info.mtime = int(stat.st_mtime)
        if path.is_dir():
            info.type, info.mode = tarfile.DIRTYPE, 0o755
        else:
            info.size, info.mode = stat.st_size, 0o644
        buffer += info.tobuf(format=tarfile.PAX_FORMAT)
        if path.is_file():
            with path.open("rb") as handle:
                while block := handle.read(chunk_bytes):
                    buffer += block
                    if len(buffer) >= chunk_bytes:
                        written += len(buffer)
                        yield bytes(buffer)
                        buffer.clear()
            if info.size % _BLOCK:
                buffer += b"\0" * (_BLOCK - info.size % _BLOCK)
        if len(buffer) >= chunk_bytes:
            written += len(buffer)
            yield bytes(buffer)
            buffer.clear()
    buffer += b"\0" * (2 * _BLOCK)
    total = written + len(buffer)
    if total % _RECORD:
        buffer += b"\0" * (_RECORD - total % _RECORD)
    yield bytes(buffer)


class CheckpointService:
    def __init__(self, jobs: JobService, artifact_dir: Path, chunk_bytes: int) -> None:
        self._jobs = jobs
        self._artifact_dir = artifact_dir.resolve()
        self._chunk_bytes = chunk_bytes

    async def list(self, tenant: str, job_id: str) -> list[CheckpointRecord]:
        await self._jobs.get(tenant, job_id)  # NOT_FOUND for unknown and foreign jobs
        entries = await self._jobs.redis.hvals(keys.checkpoints(job_id))
        if not entries and self._jobs.archive is not None:  # a retired job: from its archive
            archived = await self._jobs.archive.read(job_id)
            entries = archived.checkpoints if archived is not None else []
        records = sorted((CheckpointRecord.from_json(e) for e in entries), key=lambda c: c.step)
        top = best_checkpoint(records)  # only the job's current best keeps its mark
        return [dataclasses.replace(c, best=c is top) for c in records]

    async def download(
        self, tenant: str, job_id: str, step: int | None, best: bool = False
    ) -> tuple[CheckpointRecord, AsyncIterator[bytes]]:
        info, path = await self._checkpoint_dir(tenant, job_id, step, best)
        return info, self._chunks(path)

    async def artifact(
        self,
        tenant: str,
        job_id: str,
        step: int | None,
        kind: exports.ArtifactKind,
        best: bool = False,
    ) -> tuple[CheckpointRecord, Path, AsyncIterator[bytes]]:
        """The file of `kind` exported from the checkpoint at `step` (latest when None; the
        job's best when `best`)."""
        info, checkpoint_dir = await self._checkpoint_dir(tenant, job_id, step, best)
        path = exports.artifact_path(checkpoint_dir, kind)
        inside = path.resolve().is_relative_to(self._artifact_dir)
        if path.is_symlink() or not inside or not path.is_file():
            raise errors.NotFound(
                f"job {job_id} has no {kind} export for the checkpoint at step {info.step} "
                "(made at the end of a job; the client can make one from the checkpoint)"
            )
        return info, path, self._file_chunks(path)

    def exports_of(self, info: CheckpointRecord) -> list[exports.ArtifactKind]:
        """The artifact kinds exported from this checkpoint so far (files in the store)."""
        checkpoint_dir = (self._artifact_dir / info.path).resolve()
        if not checkpoint_dir.is_relative_to(self._artifact_dir):
            return []
        return [
            kind
            for kind in exports.ArtifactKind
            if (path := exports.artifact_path(checkpoint_dir, kind)).is_file()
            and not path.is_symlink()
        ]

    async def _checkpoint_dir(
        self, tenant: str, job_id: str, step: int | None, best: bool = False
    ) -> tuple[CheckpointRecord, Path]:
        checkpoints = await self.list(tenant, job_id)
        if not checkpoints:
            raise errors.NotFound(f"job {job_id} has no checkpoints yet")
        if best:
            found = best_checkpoint(checkpoints)
            if found is None:
                raise errors.NotFound(
                    f"job {job_id} has no best checkpoint (periodic evaluation selects it: "
                    "eval_every > 0)"
                )
            info = found
        elif step is None:
            info = checkpoints[-1]
        else:
            matches = [c for c in checkpoints if c.step == step]
            if not matches:
                have = ", ".join(str(c.step) for c in checkpoints[-10:])
                raise errors.NotFound(
                    f"job {job_id} has no checkpoint at step {step} (have {have})"
                )
            info = matches[0]
        path = (self._artifact_dir / info.path).resolve()
        if not path.is_relative_to(self._artifact_dir) or not path.is_dir():
            raise errors.FailedPrecondition(
                f"checkpoint at step {info.step} is registered but not in the artifact store"
            )
        return info, path

    async def _chunks(self, path: Path) -> AsyncIterator[bytes]:
        stream = tar_stream(path, path.name, self._chunk_bytes)
        sentinel = object()
        while (chunk := await asyncio.to_thread(next, stream, sentinel)) is not sentinel:
            yield chunk  # type: ignore[misc]

    async def _file_chunks(self, path: Path) -> AsyncIterator[bytes]:
        with path.open("rb") as handle:
            while block := await asyncio.to_thread(handle.read, self._chunk_bytes):
                yield block
