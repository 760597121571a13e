"""The Python SDK: `Client(address, token)` over the JobService.

    from . import Client

    with Client("localhost:50051", token) as client:
        job = client.submit_ppo(task="walk", num_envs=4096).job
        for event in client.watch(job.job_id):
            print(event)
        client.download_checkpoint(job.job_id, out_dir="policy/")

Every unary call has a deadline. Idempotent calls (Get, List, ListCheckpoints, Watch, Download,
and Submit, which carries a request_id) are retried with exponential backoff on UNAVAILABLE;
Cancel is not. `watch` reconnects from the last event it delivered, so a dropped stream neither
loses nor repeats events. Failures raise the typed errors of wildrobot.clients.errors.
"""

from __future__ import annotations

import dataclasses
import json
import random
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import IO, Any, TypeVar

import grpc
from pydantic import ValidationError

from wildrobot import presets
from wildrobot.convert import (
    amp_spec_fields_to_proto,
    artifact_kind_to_proto,
    kind_to_proto,
    maml_fields_to_proto,
    ppo_spec_fields_to_proto,
    state_to_proto,
    tta_eval_fields_to_proto,
)
from wildrobot.exports import ArtifactKind
from wildrobot.specs import AmpSpec, JobKind, JobState, MamlSpec, PpoSpec, TtaEvalSpec
from wildrobot.v1 import dynamics_pb2_grpc, jobs_pb2, jobs_pb2_grpc

from . import dynamics, errors
from .types import (
    CheckpointInfo,
    Job,
    JobEvent,
    Snapshot,
    StateChanged,
    SubmitResult,
    event_from_proto,
)

T = TypeVar("T")


# Dropped connections surface as UNAVAILABLE, or as INTERNAL/UNKNOWN/CANCELLED when the transport
# resets a stream that was already open (server restart, proxy cut).
def _watch_overflow(exc: grpc.RpcError) -> bool:
    """The server dropped a slow watch; resuming from the last delivered seq loses nothing."""
    code, details = exc.code(), exc.details() or ""
    return code == grpc.StatusCode.RESOURCE_EXHAUSTED and details.startswith("watch queue overflow")


_STREAM_BREAK_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,
    }
)
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


class Client:
    """A connection to one WildRobot server. Thread-safe; close it (or use `with`) when done."""

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

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- inverse dynamics (synchronous) ----------------------------------------------------------

    def inverse_dynamics(
        self,
        qpos: Any,
        grf: Any,
        cop: Any,
        *,
        rate_hz: float,
        free_moment: Any = None,
        qvel: Any = None,
        qacc: Any = None,
        smooth_window: int | None = None,
        smooth_forces: bool | None = None,
        cop_threshold: float | None = None,
        timeout_s: float | None = None,
        foot_names: Sequence[str] = (),
        joint_names: Sequence[str] = (),
    ) -> dynamics.InverseDynamicsResult:
        """Joint torques, root residual, ankle moments and COP of one trial (docs/inverse_dynamics.md).

        qpos [T, nq], grf/cop/free_moment [T, 2, 3], qvel/qacc [T, nv]; float32 or float64 (the
        answer has the same dtype); at most 10,000 frames (sent and answered in slices through
        InverseDynamicsStream, so any server message limit works). foot_names / joint_names: the order the data follows, as a
        trial file declares it (the server rejects any other than the model's). Options out of
        range raise TrialError here, naming the option; bad inputs raise the INVALID_ARGUMENT
        error naming the input. Retried on UNAVAILABLE (the call has no side effects)."""
        request = dynamics.build_request(
            {
                "qpos": qpos,
                "grf": grf,
                "cop": cop,
                "free_moment": free_moment,
                "qvel": qvel,
                "qacc": qacc,
            },
            rate_hz,
            {
                "smooth_window": smooth_window,
                "smooth_forces": smooth_forces,
                "cop_threshold": cop_threshold,
            },
            {"foot_names": foot_names, "joint_names": joint_names},
        )
        timeout = timeout_s or max(self.timeout_s, 120.0)  # a first call per length compiles
        # The streaming call: up to 10,000 frames whatever the server's message limit.
        messages = dynamics.stream_requests(request)
        responses = self._call_with_retry(
            lambda: list(
                self._dynamics.InverseDynamicsStream(
                    iter(messages), timeout=timeout, metadata=self._metadata
                )
            ),
            method="InverseDynamicsStream",
            job_id=None,
            attempts=self.retry.max_attempts,
        )
        return dynamics.result_from_stream(responses)

    # -- submitting ---------------------------------------------------------------------------

    def submit_ppo(
        self,
        spec: PpoSpec | None = None,
        *,
        name: str = "",
        request_id: str | None = None,
        validate_only: bool = False,
        preset: str | None = None,
        **fields: Any,
    ) -> SubmitResult:
        """Submits a PPO job from a full `PpoSpec`, or from just the fields given (the server fills
        in the spec's defaults for the rest). `preset` (wildrobot.presets, e.g. "walk-gpu") fills
        the fields not given. Raises InvalidSpec naming the field and rule."""
        msg = _training_message(ppo_spec_fields_to_proto, spec, fields, preset)
        return self.submit(
            jobs_pb2.JobSpec(ppo=msg), name=name, request_id=request_id, validate_only=validate_only
        )

    def submit_amp(
        self,
        spec: AmpSpec | None = None,
        *,
        name: str = "",
        request_id: str | None = None,
        validate_only: bool = False,
        preset: str | None = None,
        **fields: Any,
    ) -> SubmitResult:
        """Submits an AMP job (PPO + adversarial motion prior) from a full `AmpSpec`, or from just
        the fields given, flat as in the spec (PPO's and AMP's: `motions=("walk_0.2", "stand")`,
        `style_weight=0.5`, `num_envs=4096`); the server fills in the defaults. A motion is a
        shipped clip name or an .npz among your uploads (`upload_trial`); the server refuses
        one that is neither. `preset` fills the PPO fields not given, as for submit_ppo.
        Raises InvalidSpec naming the field and rule."""
        msg = _training_message(amp_spec_fields_to_proto, spec, fields, preset)
        return self.submit(
            jobs_pb2.JobSpec(amp=msg), name=name, request_id=request_id, validate_only=validate_only
        )

    def submit_tta(
        self,
        *,
        name: str = "",
        request_id: str | None = None,
        validate_only: bool = False,
        **fields: Any,
    ) -> SubmitResult:
        """Submits a tta_eval job (TtaEvalSpec fields; the server fills in the defaults and checks
        the checkpoint is one of yours). Raises InvalidSpec naming the field and rule."""
        try:
            TtaEvalSpec(**fields)  # the same rules the server applies, before the round trip
            msg = tta_eval_fields_to_proto(fields)
        except (ValidationError, ValueError, TypeError) as exc:
            text = _validation_text(exc)
            raise errors.InvalidSpec(
                f"invalid spec: {text}", errors.parse_violations(text)
            ) from None
        return self.submit(
            jobs_pb2.JobSpec(tta_eval=msg),
            name=name,
            request_id=request_id,
            validate_only=validate_only,
        )

    def submit_maml(
        self,
        *,
        name: str = "",
        request_id: str | None = None,
        validate_only: bool = False,
        **fields: Any,
    ) -> SubmitResult:
        """Submits a maml job (MamlSpec fields: `task="stand"`, `tasks_per_batch=8`,
        `inner_steps=1`, `inner_lr=1e-2`, ...; the server fills in the defaults). Raises
        InvalidSpec naming the field and rule."""
        try:
            MamlSpec(**fields)  # the same rules the server applies, before the round trip
            msg = maml_fields_to_proto(fields)
        except (ValidationError, ValueError, TypeError) as exc:
            text = _validation_text(exc)
            raise errors.InvalidSpec(
                f"invalid spec: {text}", errors.parse_violations(text)
            ) from None
        return self.submit(
            jobs_pb2.JobSpec(maml=msg),
            name=name,
            request_id=request_id,
            validate_only=validate_only,
        )

    def tta_report(self, job_id: str) -> dict[str, Any]:
        """The report (report.json) of a finished tta_eval job; NotFound until it has one."""
        names = [a["name"] for a in self.list_artifacts(job_id) if a["kind"] == "tta_report"]
        report = [n for n in names if n.endswith("/report.json")]
        if not report:
            raise errors.JobNotFound(job_id, f"job {job_id} has no TTA report (yet)")
        with tempfile.TemporaryDirectory() as tmp:
            path = self.download_file(job_id, report[-1], Path(tmp) / "report.json")
            return json.loads(path.read_text())

    def submit(
        self,
        spec: jobs_pb2.JobSpec,
        *,
        name: str = "",
        request_id: str | None = None,
        validate_only: bool = False,
    ) -> SubmitResult:
        """Submits any job kind from its wire spec. Safe to retry: the request_id (generated when
        absent) makes a repeated submit return the first job instead of creating another."""
        request = jobs_pb2.SubmitJobRequest(
            spec=spec,
            request_id=request_id or uuid.uuid4().hex,
            validate_only=validate_only,
            name=name,
        )
        response = self._unary("SubmitJob", request, idempotent=True)
        return SubmitResult(Job.from_proto(response.job), response.created)

    # -- reading and cancelling -----------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        request = jobs_pb2.GetJobRequest(job_id=job_id)
        return Job.from_proto(self._unary("GetJob", request, idempotent=True, job_id=job_id))

    def list(
        self,
        *,
        kind: JobKind | str | None = None,
        states: Sequence[JobState | str] = (),
        limit: int | None = None,
        page_size: int = 100,
    ) -> list[Job]:
        """Jobs visible to this token, newest first as the server orders them, up to `limit`."""
        jobs: list[Job] = []
        request = jobs_pb2.ListJobsRequest(
            kind=kind_to_proto(JobKind(kind)) if kind else jobs_pb2.JOB_KIND_UNSPECIFIED,
            states=[
                state_to_proto(JobState(s.upper() if isinstance(s, str) else s)) for s in states
            ],
        )
        while limit is None or len(jobs) < limit:
            request.page_size = page_size if limit is None else min(page_size, limit - len(jobs))
            response = self._unary("ListJobs", request, idempotent=True)
            jobs.extend(Job.from_proto(job) for job in response.jobs)
            if not response.next_page_token:
                break
            request.page_token = response.next_page_token
        return jobs if limit is None else jobs[:limit]

    def cancel(self, job_id: str) -> Job:
        """Asks the job to stop; returns it (CANCELLING while the worker checkpoints and stops)."""
        request = jobs_pb2.CancelJobRequest(job_id=job_id)
        response = self._unary("CancelJob", request, idempotent=False, job_id=job_id)
        return Job.from_proto(response.job)

    def list_checkpoints(self, job_id: str) -> list[CheckpointInfo]:
        request = jobs_pb2.ListCheckpointsRequest(job_id=job_id)
        response = self._unary("ListCheckpoints", request, idempotent=True, job_id=job_id)
        return [CheckpointInfo.from_proto(c) for c in response.checkpoints]

    # -- streams --------------------------------------------------------------------------------

    def watch(
        self,
        job_id: str,
        since_seq: int = 0,
        *,
        on_reconnect: Callable[[int, str], None] | None = None,
    ) -> Iterator[JobEvent]:
        """Events of a job: a Snapshot first (and again after each reconnect), then every event
        with seq > since_seq in order, exactly once, until the job ends (a terminal StateChanged,
        or a terminal Snapshot with nothing newer to send). Reconnects from the last delivered
        seq when the stream drops (or the server ended it because this reader fell more than
        its watch queue behind), calling `on_reconnect(last_seq, why)` first; raises
        ServerUnreachable after `reconnect_timeout_s` without a connection. Events the server
        no longer retains come as one EventsTrimmed(first_seq, last_seq), never skipped."""
        last_seq = since_seq
        failures = 0
        failing_since: float | None = None
        while True:
            request = jobs_pb2.WatchJobRequest(job_id=job_id, since_seq=last_seq)
            call = self._stub.WatchJob(request, metadata=self._metadata)
            terminal_snapshot = False
            try:
                for msg in call:
                    failing_since = None
                    event = event_from_proto(msg)
                    if isinstance(event, Snapshot):
                        yield event
                        terminal_snapshot = event.job.done
                        if terminal_snapshot and event.job.last_seq <= last_seq:
                            return
                        continue
                    if msg.seq <= last_seq:
                        continue  # already delivered before a reconnect
                    last_seq, failures = msg.seq, 0
                    if event is not None:
                        yield event
                    if isinstance(event, StateChanged) and event.done:
                        return
                if terminal_snapshot:
                    return  # the server closed after sending what it retains
            except grpc.RpcError as exc:
                if exc.code() not in _STREAM_BREAK_CODES and not _watch_overflow(exc):
                    raise errors.from_rpc_error(
                        exc, address=self.address, method="WatchJob", job_id=job_id
                    ) from exc
                detail = exc.details() or exc.code().name
            else:
                detail = "stream closed"
            finally:
                call.cancel()
            failures += 1
            failing_since = failing_since or time.monotonic()
            if time.monotonic() - failing_since > self.retry.reconnect_timeout_s:
                raise errors.ServerUnreachable(self.address, detail)
            if on_reconnect is not None:
                on_reconnect(last_seq, detail)
            time.sleep(self.retry.backoff_s(failures))

    def download_checkpoint(
        self, job_id: str, out_dir: str | Path, step: int | None = None
    ) -> Download:
        """Downloads a checkpoint (the latest when `step` is None) and extracts it into `out_dir`.

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

    def _fetch_archive(self, job_id: str, step: int | None, buffer: IO[bytes]) -> CheckpointInfo:
        request = jobs_pb2.DownloadCheckpointRequest(job_id=job_id)
        if step is not None:
            request.step = step
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
        self, job_id: str, kind: str, out_path: str | Path, step: int | None = None
    ) -> ArtifactDownload:
        """Downloads the file the worker exported from a checkpoint (the latest when `step` is
        None): kind "onnx" (the policy) or "video" (an MP4 rollout). Raises ExportNotFound when
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
        step: int | None = None,
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
        self, job_id: str, kind: ArtifactKind, step: int | None, buffer: IO[bytes]
    ) -> tuple[CheckpointInfo, int]:
        request = jobs_pb2.DownloadArtifactRequest(job_id=job_id, kind=artifact_kind_to_proto(kind))
        if step is not None:
            request.step = step
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

    UPLOAD_CHUNK_BYTES = 64 * 1024

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

    # -- plumbing -------------------------------------------------------------------------------

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


def _training_message(
    to_proto: Callable[[dict[str, Any]], T],
    spec: PpoSpec | None,
    fields: dict[str, Any],
    preset: str | None,
) -> T:
    """The wire message of a training spec (ppo, amp): a whole spec, or the given fields under a
    preset's; InvalidSpec naming the field when a value does not fit the wire."""
    if spec is not None and (fields or preset):
        raise TypeError(
            f"pass either a {type(spec).__name__} or spec fields (and a preset), not both"
        )
    if spec is not None:
        fields = spec.model_dump(exclude={"kind"})
    try:
        if preset is not None:
            fields = presets.apply_preset(preset, fields)
        return to_proto(fields)
    except (KeyError, ValueError, TypeError) as exc:
        text = str(exc).strip("'\"")
        raise errors.InvalidSpec(f"invalid spec: {text}", errors.parse_violations(text)) from None


def _validation_text(exc: Exception) -> str:
    """`field: rule` per violation (pydantic's), or the error's own text."""
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}" for e in exc.errors()
        )
    return str(exc).strip("'\"")


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
