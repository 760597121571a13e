"""A job's files: checkpoints (safe extraction), exports (ONNX, video; made here when the server
has none), trial uploads, and every other file ListArtifacts names."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any

from wildrobot.convert import artifact_kind_to_proto
from wildrobot.exports import ArtifactKind
from wildrobot.v1 import jobs_pb2

from .. import errors
from ..types import CheckpointInfo, Step, set_step
from .connection import Connection


@dataclasses.dataclass(frozen=True)
class Download:
    checkpoint: CheckpointInfo
    path: Path  # the folder the checkpoint was extracted into


@dataclasses.dataclass(frozen=True)
class ArtifactDownload:
    checkpoint: CheckpointInfo
    kind: str  # onnx | video (wildrobot.exports.ArtifactKind)
    path: Path  # the file written
    size_bytes: int
    made_here: bool  # True: the server had none, so it was made here from the checkpoint


class ArtifactsClient(Connection):
    """Download checkpoints and exports, upload trials, list and fetch a job's files (part of
    `Client`)."""

    UPLOAD_CHUNK_BYTES = 64 * 1024

    # -- checkpoints and exports ---------------------------------------------------------------

    def download_checkpoint(self, job_id: str, out_dir: str | Path, step: Step = None) -> Download:
        """Downloads a checkpoint (the latest when `step` is None, the job's best when "best") and
        extracts it into `out_dir`.

        The archive is checked before anything is written: absolute paths, `..` components,
        links and device files are refused (UnsafeArchive)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out) as buffer:
            info = self._retry_stream(
                lambda: self._fetch_archive(job_id, step, buffer), job_id, "DownloadCheckpoint"
            )
            buffer.seek(0)
            extract_tar(buffer, out)
        return Download(info, out)

    def _fetch_archive(self, job_id: str, step: Step, buffer: IO[bytes]) -> CheckpointInfo:
        request = jobs_pb2.DownloadCheckpointRequest(job_id=job_id)
        set_step(request, step)
        buffer.seek(0)
        buffer.truncate()
        info: CheckpointInfo | None = None
        for chunk in self._stub.DownloadCheckpoint(request, metadata=self._metadata):
            if info is None:
                info = CheckpointInfo.from_proto(chunk.info)
            buffer.write(chunk.data)
        if info is None:
            raise errors.CheckpointNotFound(f"job {job_id!r}: the server sent no checkpoint")
        return info

    def download_artifact(
        self, job_id: str, kind: str, out_path: str | Path, step: Step = None
    ) -> ArtifactDownload:
        """Downloads the file the worker exported from a checkpoint (the latest when `step` is
        None; the best one when "best"): kind "onnx" (the policy) or "video" (an MP4 rollout). Raises ExportNotFound when
        that checkpoint has none (only a job's final checkpoint gets them; see `export`)."""
        kind = ArtifactKind(kind)
        out = Path(out_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.part")
        try:
            with tmp.open("w+b") as buffer:
                info, size = self._retry_stream(
                    lambda: self._fetch_artifact(job_id, kind, step, buffer),
                    job_id,
                    "DownloadArtifact",
                )
            tmp.replace(out)
        finally:
            tmp.unlink(missing_ok=True)
        return ArtifactDownload(info, str(kind), out, size, made_here=False)

    def export(
        self,
        job_id: str,
        kind: str,
        out_path: str | Path,
        step: Step = None,
        video_seconds: float = 4.0,
    ) -> ArtifactDownload:
        """The checkpoint's export from the server when it has one; otherwise downloads the
        checkpoint and makes it here (needs this package's JAX/MuJoCo install; video: EGL)."""
        try:
            return self.download_artifact(job_id, kind, out_path, step)
        except errors.ExportNotFound:
            pass
        with tempfile.TemporaryDirectory(prefix="wildrobot-export-") as tmp:
            download = self.download_checkpoint(job_id, tmp, step)
            checkpoint_dir = Path(tmp) / f"{download.checkpoint.step:012d}"
            try:
                path = _export_locally(checkpoint_dir, kind, Path(out_path), job_id, video_seconds)
            except _LocalExportError as exc:
                raise errors.ExportFailed(
                    f"{kind} of {job_id} at step {download.checkpoint.step}: {exc}"
                ) from exc
        return ArtifactDownload(
            download.checkpoint, str(ArtifactKind(kind)), path, path.stat().st_size, made_here=True
        )

    def _fetch_artifact(
        self, job_id: str, kind: ArtifactKind, step: Step, buffer: IO[bytes]
    ) -> tuple[CheckpointInfo, int]:
        request = jobs_pb2.DownloadArtifactRequest(job_id=job_id, kind=artifact_kind_to_proto(kind))
        set_step(request, step)
        buffer.seek(0)
        buffer.truncate()
        info: CheckpointInfo | None = None
        size = 0
        for chunk in self._stub.DownloadArtifact(request, metadata=self._metadata):
            if info is None:
                info, size = CheckpointInfo.from_proto(chunk.info), chunk.size_bytes
            buffer.write(chunk.data)
        if info is None:
            raise errors.ExportNotFound(f"job {job_id!r}: the server sent no {kind} file")
        if buffer.tell() != size:
            raise errors.ServerError(
                f"DownloadArtifact: got {buffer.tell()} bytes of a {size}-byte {kind} file"
            )
        return info, size

    # -- uploads and a job's files ---------------------------------------------------------------

    def upload_trial(self, source: str | Path | bytes, name: str | None = None) -> dict[str, Any]:
        """Uploads a trial file (.npz/.csv, at most 16 MiB) into this tenant's inputs, streamed
        in chunks (so it need not fit one message); returns {"name", "size_bytes", "sha256"}.
        Name it in an inverse-dynamics job's `trial_names`."""
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        if name is None:
            if isinstance(source, bytes):
                raise TypeError("name is required when uploading bytes")
            name = Path(source).name
        step = self.UPLOAD_CHUNK_BYTES

        def chunks() -> Iterator[jobs_pb2.UploadChunk]:
            yield jobs_pb2.UploadChunk(name=name, data=data[:step])
            for start in range(step, len(data), step):
                yield jobs_pb2.UploadChunk(data=data[start : start + step])

        info = self._call_with_retry(
            lambda: self._stub.UploadTrial(
                chunks(), timeout=max(self.timeout_s, 120.0), metadata=self._metadata
            ),
            method="UploadTrial",
            job_id=None,
            attempts=self.retry.max_attempts,  # same name, same bytes: safe to repeat
        )
        return {"name": info.name, "size_bytes": info.size_bytes, "sha256": info.sha256}

    def list_uploads(self) -> list[dict[str, Any]]:
        response = self._unary("ListUploads", jobs_pb2.ListUploadsRequest(), idempotent=True)
        return [{"name": u.name, "size_bytes": u.size_bytes} for u in response.uploads]

    def list_artifacts(self, job_id: str) -> list[dict[str, Any]]:
        """Every file of a job the server can send: exports and inverse-dynamics outputs, each
        {"name", "kind", "size_bytes", "step"}; download one with `download_file`."""
        response = self._unary(
            "ListArtifacts",
            jobs_pb2.ListArtifactsRequest(job_id=job_id),
            idempotent=True,
            job_id=job_id,
        )
        kinds = {v: k for k, v in jobs_pb2.ArtifactKind.items()}
        return [
            {
                "name": a.name,
                "kind": kinds.get(a.kind, "").removeprefix("ARTIFACT_KIND_").lower(),
                "size_bytes": a.size_bytes,
                "step": a.step,
            }
            for a in response.artifacts
        ]

    def download_file(self, job_id: str, name: str, out_path: str | Path) -> Path:
        """Downloads one file ListArtifacts named (written to a temporary name, then renamed)."""
        out = Path(out_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.part")
        request = jobs_pb2.DownloadArtifactRequest(job_id=job_id, name=name)

        def fetch(buffer: IO[bytes]) -> int:
            buffer.seek(0)
            buffer.truncate()
            size = -1
            for chunk in self._stub.DownloadArtifact(request, metadata=self._metadata):
                if size < 0:
                    size = chunk.size_bytes
                buffer.write(chunk.data)
            if buffer.tell() != size:
                raise errors.ServerError(f"DownloadArtifact: got {buffer.tell()} of {size} bytes")
            return size

        try:
            with tmp.open("w+b") as buffer:
                self._retry_stream(lambda: fetch(buffer), job_id, "DownloadArtifact")
            tmp.replace(out)
        finally:
            tmp.unlink(missing_ok=True)
        return out

    def tta_report(self, job_id: str) -> dict[str, Any]:
        """The report (report.json) of a finished tta_eval job; NotFound until it has one."""
        names = [a["name"] for a in self.list_artifacts(job_id) if a["kind"] == "tta_report"]
        report = [n for n in names if n.endswith("/report.json")]
        if not report:
            raise errors.JobNotFound(job_id, f"job {job_id} has no TTA report (yet)")
        with tempfile.TemporaryDirectory() as tmp:
            path = self.download_file(job_id, report[-1], Path(tmp) / "report.json")
            return json.loads(path.read_text())


def extract_tar(fileobj: IO[bytes], dest: Path) -> list[str]:
    """Extracts an uncompressed tar into `dest` after checking every member stays inside it.

    Returns the member names. Raises UnsafeArchive (and writes nothing) otherwise."""
    with tarfile.open(fileobj=fileobj, mode="r:") as tar:
        members = tar.getmembers()
        for member in members:
            _check_member(member)
        tar.extractall(dest, members=members, filter="data")
    return [m.name for m in members]


def _check_member(member: tarfile.TarInfo) -> None:
    path = PurePosixPath(member.name)
    if member.name.startswith(("/", "\\")) or path.is_absolute() or ":" in path.parts[0]:
        raise errors.UnsafeArchive(f"checkpoint archive has an absolute path: {member.name!r}")
    if ".." in path.parts or ".." in PurePosixPath(member.name.replace("\\", "/")).parts:
        raise errors.UnsafeArchive(f"checkpoint archive has a '..' path: {member.name!r}")
    if not (member.isfile() or member.isdir()):
        raise errors.UnsafeArchive(
            f"checkpoint archive has a link or special file: {member.name!r}"
        )


class _LocalExportError(Exception):
    """The exporter process refused the checkpoint (its reason is the message)."""


def _export_locally(
    checkpoint_dir: Path, kind: str, out_path: Path, job_id: str, video_seconds: float
) -> Path:
    """Runs the workers' exporter as a process (needs this package's JAX/MuJoCo install; video:
    EGL). A process, not an import: the client package depends only on the core and the wire."""
    command = [
        sys.executable, "-m", "wildrobot.workers.export.on_demand",
        str(checkpoint_dir), kind, str(out_path), job_id, repr(float(video_seconds)),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "no output"
        raise _LocalExportError(reason)
    return Path(done.stdout.strip().splitlines()[-1])
