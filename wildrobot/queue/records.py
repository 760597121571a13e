"""The job record (the `wr:job:<id>` hash), events and checkpoint infos as Python values."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from wildrobot.specs import TERMINAL_STATES, JobKind, JobState


def _int(value: str | None) -> int | None:
    return int(value) if value not in (None, "", "0") else None


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    tenant: str
    kind: JobKind
    state: JobState
    attempt: int
    lost: int  # leases lost (worker died); counts against the retry limit
    name: str
    spec_json: str
    created_at_ms: int
    updated_at_ms: int
    started_at_ms: int | None
    finished_at_ms: int | None
    steps_done: int
    steps_total: int
    steps_per_second: float
    last_metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""
    last_seq: int = 0
    last_checkpoint: int | None = None
    lease_owner: str = ""

    @classmethod
    def from_hash(cls, h: dict[str, str]) -> JobRecord:
        return cls(
            job_id=h["job_id"],
            tenant=h["tenant"],
            kind=JobKind(h["kind"]),
            state=JobState(h["state"]),
            attempt=int(h.get("attempt", 0)),
            lost=int(h.get("lost", 0)),
            name=h.get("name", ""),
            spec_json=h["spec"],
            created_at_ms=int(h["created_at"]),
            updated_at_ms=int(h.get("updated_at", h["created_at"])),
            started_at_ms=_int(h.get("started_at")),
            finished_at_ms=_int(h.get("finished_at")),
            steps_done=int(h.get("steps_done", 0)),
            steps_total=int(h.get("steps_total", 0)),
            steps_per_second=float(h.get("steps_per_second", 0.0)),
            last_metrics=json.loads(h["last_metrics"]) if h.get("last_metrics") else {},
            error=h.get("error", ""),
            last_seq=int(h.get("last_seq", 0)),
            last_checkpoint=int(h["last_checkpoint"]) if h.get("last_checkpoint") else None,
            lease_owner=h.get("lease_owner", ""),
        )


@dataclass(frozen=True)
class JobEvent:
    """One entry of a job's event stream; `kind` is state | metrics | checkpoint | log."""

    seq: int
    kind: str
    time_ms: int
    data: dict[str, Any]

    @classmethod
    def from_entry(cls, entry_id: str, fields: dict[str, str]) -> JobEvent:
        return cls(
            seq=int(entry_id.split("-", 1)[0]),
            kind=fields["t"],
            time_ms=int(fields["ts"]),
            data=json.loads(fields["d"]),
        )

    @property
    def is_terminal(self) -> bool:
        return self.kind == "state" and JobState(self.data["state"]) in TERMINAL_STATES


@dataclass(frozen=True)
class CheckpointRecord:
    step: int
    attempt: int
    size_bytes: int
    created_at_ms: int
    path: str = ""  # relative to the artifact directory: <job_id>/checkpoints/<step>
    best: bool = False  # registered as a new best (the job's best is the newest such one)

    @classmethod
    def from_json(cls, payload: str) -> CheckpointRecord:
        return cls.from_json_dict(json.loads(payload))

    @classmethod
    def from_json_dict(cls, d: dict[str, Any]) -> CheckpointRecord:
        return cls(
            step=int(d["step"]),
            attempt=int(d["attempt"]),
            size_bytes=int(d.get("size_bytes", 0)),
            created_at_ms=int(d.get("created_at_ms", 0)),
            path=str(d.get("path", "")),
            best=bool(d.get("best", False)),
        )


def best_checkpoint(records: Iterable[CheckpointRecord]) -> CheckpointRecord | None:
    """The job's best checkpoint: the highest step registered as a new best (None if none)."""
    bests = [c for c in records if c.best]
    return max(bests, key=lambda c: c.step) if bests else None
