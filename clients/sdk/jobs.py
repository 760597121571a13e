"""Jobs: submitting (ppo, amp, tta_eval, any wire spec), reading, cancelling and watching."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import grpc
from pydantic import ValidationError

from wildrobot import presets
from wildrobot.convert import (
    amp_spec_fields_to_proto,
    kind_to_proto,
    maml_fields_to_proto,
    ppo_spec_fields_to_proto,
    state_to_proto,
    tta_eval_fields_to_proto,
)
from wildrobot.specs import AmpSpec, JobKind, JobState, MamlSpec, PpoSpec, TtaEvalSpec
from wildrobot.v1 import jobs_pb2

from .. import errors
from ..types import (
    CheckpointInfo,
    Job,
    JobEvent,
    Snapshot,
    StateChanged,
    SubmitResult,
    event_from_proto,
)
from .connection import Connection

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


class JobsClient(Connection):
    """Submit, read, cancel and watch jobs (part of `Client`)."""

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
        msg = _checked_message(TtaEvalSpec, tta_eval_fields_to_proto, fields)
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
        msg = _checked_message(MamlSpec, maml_fields_to_proto, fields)
        return self.submit(
            jobs_pb2.JobSpec(maml=msg),
            name=name,
            request_id=request_id,
            validate_only=validate_only,
        )

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


def spec_error(exc: Exception) -> errors.InvalidSpec:
    """InvalidSpec naming each field and rule of a spec the client itself rejected."""
    if isinstance(exc, ValidationError):
        text = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}" for e in exc.errors()
        )
    else:
        text = str(exc).strip("'\"")
    return errors.InvalidSpec(f"invalid spec: {text}", errors.parse_violations(text))


def _checked_message(spec_cls: Any, to_proto: Callable[[dict], Any], fields: dict) -> Any:
    """The wire message of `fields` after the same rules the server applies (spec_cls);
    InvalidSpec naming the field and rule otherwise."""
    try:
        spec_cls(**fields)
        return to_proto(fields)
    except (ValidationError, ValueError, TypeError) as exc:
        raise spec_error(exc) from None
