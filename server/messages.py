"""Domain values (wildrobot.queue.records) -> wire messages (wildrobot.v1)."""

from __future__ import annotations

import functools

from google.protobuf import timestamp_pb2

from wildrobot import convert
from wildrobot.queue.records import CheckpointRecord, JobEvent, JobRecord
from wildrobot.specs import JobKind, JobState, spec_from_json
from wildrobot.v1 import jobs_pb2

from . import errors


def timestamp(ms: int | None) -> timestamp_pb2.Timestamp | None:
    if not ms:
        return None
    return timestamp_pb2.Timestamp(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


@functools.lru_cache(maxsize=4096)
def _spec_bytes(kind: str, spec_json: str) -> bytes:
    # Specs never change after submit; GetJob-heavy dashboards hit this cache.
    return convert.spec_to_proto(spec_from_json(kind, spec_json)).SerializeToString()


def job_to_proto(record: JobRecord) -> jobs_pb2.Job:
    job = jobs_pb2.Job(
        job_id=record.job_id,
        kind=convert.kind_to_proto(record.kind),
        state=convert.state_to_proto(record.state),
        attempt=record.attempt,
        name=record.name,
        tenant=record.tenant,
        created_at=timestamp(record.created_at_ms),
        started_at=timestamp(record.started_at_ms),
        finished_at=timestamp(record.finished_at_ms),
        updated_at=timestamp(record.updated_at_ms),
        progress=jobs_pb2.Progress(
            steps_done=record.steps_done,
            steps_total=record.steps_total,
            steps_per_second=record.steps_per_second,
        ),
        last_metrics=record.last_metrics,
        error=record.error,
        last_seq=record.last_seq,
    )
    job.spec.ParseFromString(_spec_bytes(record.kind.value, record.spec_json))
    return job


def checkpoint_to_proto(info: CheckpointRecord) -> jobs_pb2.CheckpointInfo:
    return jobs_pb2.CheckpointInfo(
        step=info.step,
        attempt=info.attempt,
        size_bytes=info.size_bytes,
        created_at=timestamp(info.created_at_ms),
        best=info.best,
    )


def event_to_proto(event: JobEvent) -> jobs_pb2.JobEvent:
    msg = jobs_pb2.JobEvent(seq=event.seq, time=timestamp(event.time_ms))
    data = event.data
    if event.kind == "state":
        msg.state.CopyFrom(
            jobs_pb2.StateChange(
                state=convert.state_to_proto(JobState(data["state"])),
                attempt=int(data.get("attempt", 0)),
                reason=str(data.get("reason", "")),
            )
        )
    elif event.kind == "metrics":
        msg.metrics.CopyFrom(
            jobs_pb2.MetricPoint(
                step=int(data["step"]),
                wall_time_s=float(data.get("wall_time_s", 0.0)),
                values={k: float(v) for k, v in data.get("values", {}).items()},
            )
        )
    elif event.kind == "checkpoint":
        msg.checkpoint.CopyFrom(checkpoint_to_proto(CheckpointRecord.from_json_dict(data)))
    elif event.kind == "trimmed":
        msg.trimmed.CopyFrom(
            jobs_pb2.EventsTrimmed(first_seq=int(data["first_seq"]), last_seq=int(data["last_seq"]))
        )
    else:
        msg.log.CopyFrom(
            jobs_pb2.LogLine(level=str(data.get("level", "info")), message=str(data.get("message")))
        )
    return msg


def snapshot_event(record: JobRecord) -> jobs_pb2.JobEvent:
    return jobs_pb2.JobEvent(
        seq=0, time=timestamp(record.updated_at_ms), snapshot=job_to_proto(record)
    )


def list_filters(request: jobs_pb2.ListJobsRequest) -> tuple[JobKind | None, frozenset[JobState]]:
    """ListJobs' kind (None: every kind) and states (empty: every state); raises
    errors.InvalidArgument naming the field for an enum number the service does not know (a
    filter it cannot apply must not widen into "everything")."""
    kind = convert.kind_from_proto(request.kind)
    if kind is None and request.kind != jobs_pb2.JOB_KIND_UNSPECIFIED:
        raise errors.InvalidArgument(f"kind: unknown job kind {request.kind}", ("kind",))
    states = set()
    for i, value in enumerate(request.states):
        state = convert.state_from_proto(value)
        if state is None:
            field = f"states[{i}]"
            raise errors.InvalidArgument(f"{field}: unknown job state {value}", (field,))
        states.add(state)
    return kind, frozenset(states)
