"""Domain values -> JSON-ready dicts for the HTTP API (what messages.py is for gRPC)."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from typing import Any

from wildrobot.queue.records import CheckpointRecord, JobEvent, JobRecord
from wildrobot.specs import JobState

from ..history import MetricPoint


@functools.lru_cache(maxsize=4096)
def _spec(spec_json: str) -> dict[str, Any]:
    return json.loads(spec_json)


def eta_s(record: JobRecord) -> float | None:
    """Seconds left at the current rate; None unless the job is running with a known rate."""
    if record.state != JobState.RUNNING or record.steps_per_second <= 0:
        return None
    return max(0, record.steps_total - record.steps_done) / record.steps_per_second


def job(record: JobRecord) -> dict[str, Any]:
    total = record.steps_total
    return {
        "job_id": record.job_id,
        "name": record.name,
        "tenant": record.tenant,
        "kind": record.kind.value,
        "state": record.state.value,
        "attempt": record.attempt,
        "lost": record.lost,
        "created_at_ms": record.created_at_ms,
        "updated_at_ms": record.updated_at_ms,
        "started_at_ms": record.started_at_ms,
        "finished_at_ms": record.finished_at_ms,
        "steps_done": record.steps_done,
        "steps_total": total,
        "progress": min(1.0, record.steps_done / total) if total else 0.0,
        "steps_per_second": record.steps_per_second,
        "eta_s": eta_s(record),
        "last_metrics": record.last_metrics,
        "last_checkpoint": record.last_checkpoint,
        "last_seq": record.last_seq,
        "error": record.error,
        "spec": _spec(record.spec_json),
    }


def checkpoint(info: CheckpointRecord, exported: Iterable[str] = ()) -> dict[str, Any]:
    return {
        "step": info.step,
        "attempt": info.attempt,
        "size_bytes": info.size_bytes,
        "created_at_ms": info.created_at_ms,
        "exports": [str(kind) for kind in exported],
        "best": info.best,
    }


def metric_point(point: MetricPoint) -> dict[str, Any]:
    return {
        "seq": point.seq,
        "time_ms": point.time_ms,
        "step": point.step,
        "wall_time_s": point.wall_time_s,
        "attempt": point.attempt,
        "values": point.values,
    }


def event(item: JobEvent) -> dict[str, Any]:
    """An event as the SSE `data:` and the log list carry it; metrics look like history points."""
    out: dict[str, Any] = {"seq": item.seq, "kind": item.kind, "time_ms": item.time_ms}
    if item.kind == "metrics":
        data = item.data
        out.update(
            step=int(data["step"]),
            wall_time_s=float(data.get("wall_time_s", 0.0)),
            attempt=int(data.get("attempt", 0)),
            values=data.get("values", {}),
        )
    else:
        out.update({k: v for k, v in item.data.items() if k != "path"})
    return out
