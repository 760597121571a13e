"""Typed views of the wire messages the SDK hands out (plain frozen dataclasses).

Callers never see protobuf objects; these carry the same information with Python types
(datetimes, enums from wildrobot.specs) and convert to JSON-friendly dicts for `--json`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any, Literal

from google.protobuf import json_format

from wildrobot.convert import kind_from_proto, state_from_proto
from wildrobot.specs import TERMINAL_STATES, JobKind, JobState
from wildrobot.v1 import jobs_pb2


def _time(ts: Any) -> dt.datetime | None:
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return None
    return ts.ToDatetime(tzinfo=dt.UTC)


@dataclasses.dataclass(frozen=True)
class Progress:
    steps_done: int
    steps_total: int
    steps_per_second: float

    @property
    def fraction(self) -> float:
        return self.steps_done / self.steps_total if self.steps_total else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current rate; None before the first rate is known."""
        if self.steps_per_second <= 0 or not self.steps_total:
            return None
        return max(self.steps_total - self.steps_done, 0) / self.steps_per_second


@dataclasses.dataclass(frozen=True)
class Job:
    job_id: str
    kind: JobKind | None
    state: JobState | None
    attempt: int
    name: str
    tenant: str
    created_at: dt.datetime | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    updated_at: dt.datetime | None
    progress: Progress
    last_metrics: Mapping[str, float]
    error: str
    spec: Mapping[str, Any]  # the fields the server reports (unset ones are the spec's defaults)
    last_seq: int

    @property
    def done(self) -> bool:
        return self.state in TERMINAL_STATES

    @classmethod
    def from_proto(cls, msg: jobs_pb2.Job) -> Job:
        which = msg.spec.WhichOneof("kind")
        spec = (
            json_format.MessageToDict(getattr(msg.spec, which), preserving_proto_field_name=True)
            if which
            else {}
        )
        if which == "amp":  # flat, as the spec's fields are (its PPO part is a nested message)
            spec = {**spec.pop("ppo", {}), **spec}
        return cls(
            job_id=msg.job_id,
            kind=kind_from_proto(msg.kind),
            state=state_from_proto(msg.state),
            attempt=msg.attempt,
            name=msg.name,
            tenant=msg.tenant,
            created_at=_time(msg.created_at),
            started_at=_time(msg.started_at),
            finished_at=_time(msg.finished_at),
            updated_at=_time(msg.updated_at),
            progress=Progress(
                msg.progress.steps_done, msg.progress.steps_total, msg.progress.steps_per_second
            ),
            last_metrics=dict(msg.last_metrics),
            error=msg.error,
            spec=spec,
            last_seq=msg.last_seq,
        )


@dataclasses.dataclass(frozen=True)
class CheckpointInfo:
    step: int
    attempt: int
    size_bytes: int
    created_at: dt.datetime | None
    best: bool = False  # the job's best checkpoint by periodic evaluation

    @classmethod
    def from_proto(cls, msg: jobs_pb2.CheckpointInfo) -> CheckpointInfo:
        return cls(msg.step, msg.attempt, msg.size_bytes, _time(msg.created_at), msg.best)


# Which checkpoint a download or export asks for: an env step, None (the latest) or "best"
# (the job's best by periodic evaluation).
Step = int | Literal["best"] | None


def set_step(
    request: jobs_pb2.DownloadCheckpointRequest | jobs_pb2.DownloadArtifactRequest, step: Step
) -> None:
    if step == "best":
        request.best = True
    elif isinstance(step, int) and not isinstance(step, bool):
        request.step = step
    elif step is not None:
        raise ValueError(f"step: an env step, None (the latest) or 'best', not {step!r}")


@dataclasses.dataclass(frozen=True)
class SubmitResult:
    job: Job
    created: bool  # False when request_id matched an earlier submit, or for validate_only


# Events from WatchJob. `seq` is 0 for the snapshot; stream events carry increasing numbers.


@dataclasses.dataclass(frozen=True)
class Snapshot:
    seq: int
    time: dt.datetime | None
    job: Job


@dataclasses.dataclass(frozen=True)
class StateChanged:
    seq: int
    time: dt.datetime | None
    state: JobState | None
    attempt: int
    reason: str

    @property
    def done(self) -> bool:
        return self.state in TERMINAL_STATES


@dataclasses.dataclass(frozen=True)
class Metrics:
    seq: int
    time: dt.datetime | None
    step: int
    wall_time_s: float
    values: Mapping[str, float]


@dataclasses.dataclass(frozen=True)
class CheckpointSaved:
    seq: int
    time: dt.datetime | None
    checkpoint: CheckpointInfo


@dataclasses.dataclass(frozen=True)
class Log:
    seq: int
    time: dt.datetime | None
    level: str
    message: str


@dataclasses.dataclass(frozen=True)
class EventsTrimmed:
    """Events first_seq..last_seq were asked for but the server no longer has them (its event
    stream is capped, and retired jobs keep only their archive); seq is last_seq."""

    seq: int
    time: dt.datetime | None
    first_seq: int
    last_seq: int


JobEvent = Snapshot | StateChanged | Metrics | CheckpointSaved | Log | EventsTrimmed


def event_from_proto(msg: jobs_pb2.JobEvent) -> JobEvent | None:
    """None for an event type this client does not know (a newer server)."""
    seq, time = msg.seq, _time(msg.time)
    which = msg.WhichOneof("event")
    if which == "snapshot":
        return Snapshot(seq, time, Job.from_proto(msg.snapshot))
    if which == "state":
        return StateChanged(
            seq, time, state_from_proto(msg.state.state), msg.state.attempt, msg.state.reason
        )
    if which == "metrics":
        return Metrics(
            seq, time, msg.metrics.step, msg.metrics.wall_time_s, dict(msg.metrics.values)
        )
    if which == "checkpoint":
        return CheckpointSaved(seq, time, CheckpointInfo.from_proto(msg.checkpoint))
    if which == "log":
        return Log(seq, time, msg.log.level, msg.log.message)
    if which == "trimmed":
        return EventsTrimmed(seq, time, msg.trimmed.first_seq, msg.trimmed.last_seq)
    return None


def to_jsonable(value: Any) -> Any:
    """Dataclasses, enums, datetimes and mappings as plain JSON types (for `--json`)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(
            value, (Snapshot, StateChanged, Metrics, CheckpointSaved, Log, EventsTrimmed)
        ):
            out = {"type": type(value).__name__, **out}
        return out
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value
