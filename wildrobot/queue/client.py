"""The worker side of the queue (sync redis-py): take a job, renew its lease, fenced writes.

Every method after `take` carries the lease's attempt; a refused write raises `LeaseLost`.
Connection errors are retried with backoff for `retry_s` (a Redis restart must not kill a job).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
import redis.exceptions
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from wildrobot.queue import keys, scripts
from wildrobot.queue.records import CheckpointRecord

log = logging.getLogger(__name__)
T = TypeVar("T")


_AT_QUOTA = object()  # _take_entry: the job stays queued (its tenant's running quota)
_ELSEWHERE = object()  # _take_entry: the job stays queued for a worker that takes its hosts
MULTIHOST_MODES = ("take", "skip", "only")  # which jobs by num_hosts a worker takes (TAKE)


class LeaseLost(RuntimeError):
    """The job's attempt moved on (lease expired and re-queued, or the job ended): stop writing."""


@dataclass(frozen=True)
class Lease:
    job_id: str
    attempt: int
    kind: str
    spec_json: str
    owner: str


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=2,
        socket_timeout=30,
        health_check_interval=10,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.02), 3),
        retry_on_error=[redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
    )


def with_retry(fn: Callable[[], T], retry_s: float) -> T:
    deadline = time.monotonic() + retry_s
    delay = 0.1
    while True:
        try:
            return fn()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("redis unavailable (%s); retrying in %.1f s", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def finite_values(values: Mapping[str, float]) -> dict[str, float]:
    """Scalars as plain floats, non-finite ones dropped (the wire and JSON carry finite numbers)."""
    out = {}
    for name, value in values.items():
        number = float(value)
        if math.isfinite(number):
            out[name] = number
    return out


class QueueClient:
    def __init__(
        self,
        client: redis.Redis,
        *,
        events_maxlen: int = keys.EVENTS_MAXLEN,
        retry_s: float = 60.0,
        max_running_per_tenant: int = keys.DEFAULT_MAX_RUNNING_PER_TENANT,
    ) -> None:
        self.redis = client
        self.retry_s = retry_s
        self.max_running_per_tenant = max_running_per_tenant
        self._writer = uuid.uuid4().hex[:12]
        self._writes = itertools.count(1)
        self._write_lock = threading.Lock()
        self._events_maxlen = events_maxlen
        self._take = client.register_script(scripts.TAKE)
        self._renew = client.register_script(scripts.RENEW)
        self._metrics = client.register_script(scripts.METRICS)
        self._checkpoint = client.register_script(scripts.CHECKPOINT)
        self._log = client.register_script(scripts.LOG)
        self._finish = client.register_script(scripts.FINISH)

    def ensure_groups(self, kinds: Sequence[str]) -> None:
        for kind in kinds:
            try:
                self.redis.xgroup_create(keys.queue(kind), keys.QUEUE_GROUP, id="0", mkstream=True)
            except redis.exceptions.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def take(
        self,
        kinds: Sequence[str],
        owner: str,
        lease_s: float,
        block_ms: int,
        multihost: str = "take",
    ) -> Lease | None:
        """Reads queue entries (any of `kinds`) until one leases its job; None when none is ready.

        Entries of jobs that no longer wait (cancelled while queued) are acknowledged and skipped.
        A job whose tenant is at its running quota goes back to the tail of the queue; so does
        one this worker does not take by its host count (`multihost`: "take" any job, "skip"
        num_hosts > 1, "only" num_hosts > 1). After one such, this returns None (having waited
        up to block_ms) rather than spin on it.
        """
        if multihost not in MULTIHOST_MODES:
            raise ValueError(f"multihost: {multihost!r} is not one of {MULTIHOST_MODES}")
        streams = {keys.queue(k): ">" for k in kinds}
        block: int | None = block_ms
        while True:
            reply = self.redis.xreadgroup(keys.QUEUE_GROUP, owner, streams, count=1, block=block)
            if not reply:
                return None
            for stream, entries in reply:
                for msg_id, fields in entries:
                    lease = self._take_entry(
                        stream, msg_id, fields.get("job_id", ""), owner, lease_s, multihost
                    )
                    if lease is _AT_QUOTA or lease is _ELSEWHERE:
                        time.sleep(min(block_ms, 1000) / 1000)
                        return None
                    if lease is not None:
                        return lease  # type: ignore[return-value]
            block = None  # skipped an entry: look at the next one without waiting

    def _take_entry(
        self, stream: str, msg_id: str, job_id: str, owner: str, lease_s: float, multihost: str
    ) -> Lease | object | None:
        result = self._take(
            keys=[keys.job(job_id), keys.events(job_id), keys.LEASES, stream],
            args=[
                job_id,
                owner,
                int(lease_s * 1000),
                msg_id,
                keys.QUEUE_GROUP,
                self._events_maxlen,
                self.max_running_per_tenant,
                keys.QUEUE_MAXLEN,
                multihost,
            ],
        )
        if result[0] == "elsewhere":
            log.debug("job %s (%s hosts) left for another worker", job_id, result[1])
            return _ELSEWHERE
        if result[0] == "quota":
            log.info("job %s waits: tenant %s is at its running quota", job_id, result[1])
            return _AT_QUOTA
        if result[0] != "ok":
            log.info("queue entry %s for job %s skipped (%s)", msg_id, job_id, result)
            return None
        spec_json = self.redis.hget(keys.job(job_id), "spec") or "{}"
        return Lease(job_id, int(result[1]), stream.rsplit(":", 1)[-1], spec_json, owner)

    def renew(self, lease: Lease, lease_s: float) -> str:
        """Extends the lease; returns the job's state (RUNNING or CANCELLING)."""
        result = with_retry(
            lambda: self._renew(
                keys=[keys.job(lease.job_id), keys.LEASES],
                args=[lease.job_id, lease.attempt, int(lease_s * 1000)],
            ),
            self.retry_s,
        )
        if result[0] != "ok":
            raise LeaseLost(f"job {lease.job_id} attempt {lease.attempt} lost its lease")
        return result[1]

    def _fenced(self, script: Any, lease: Lease, keys_: list[str], args: list[Any]) -> int:
        """A fenced write that emits an event; retried (Redis restarts) but applied once: it
        carries this client's next write id, and the script ignores an id it has seen."""
        with self._write_lock:
            write_id = f"{self._writer}:{next(self._writes)}"
            result = with_retry(
                lambda: script(keys=keys_, args=[lease.attempt, *args, write_id]), self.retry_s
            )
        if result[0] != "ok":
            raise LeaseLost(f"write refused: job {lease.job_id} attempt {lease.attempt} is stale")
        return int(result[1])

    def metrics(
        self,
        lease: Lease,
        step: int,
        values: Mapping[str, float],
        wall_time_s: float,
        steps_per_second: float,
    ) -> int:
        clean = finite_values(values)
        event = {
            "step": step,
            "wall_time_s": wall_time_s,
            "values": clean,
            "attempt": lease.attempt,
        }
        return self._fenced(
            self._metrics,
            lease,
            [keys.job(lease.job_id), keys.events(lease.job_id), keys.metrics(lease.job_id)],
            [
                step,
                steps_per_second,
                json.dumps(clean),
                json.dumps(event),
                self._events_maxlen,
                keys.METRICS_MAXLEN,
            ],
        )

    def checkpoint(
        self, lease: Lease, step: int, rel_path: str, size_bytes: int, best: bool = False
    ) -> int:
        """Registers a checkpoint (fenced); `best`: the run's new best by periodic evaluation.
        The job's best is the highest-step checkpoint registered with best (best_checkpoint)."""
        info = {"step": step, "attempt": lease.attempt, "size_bytes": size_bytes, "path": rel_path}
        if best:
            info["best"] = True
        return self._fenced(
            self._checkpoint,
            lease,
            [keys.job(lease.job_id), keys.events(lease.job_id), keys.checkpoints(lease.job_id)],
            [step, json.dumps(info), self._events_maxlen],
        )

    def log_line(self, lease: Lease, level: str, message: str) -> int:
        event = {"level": level, "message": message[:4000], "attempt": lease.attempt}
        return self._fenced(
            self._log,
            lease,
            [keys.job(lease.job_id), keys.events(lease.job_id)],
            [json.dumps(event), self._events_maxlen],
        )

    def finish(self, lease: Lease, outcome: str, reason: str, max_retries: int) -> str:
        """outcome: SUCCEEDED | FAILED | CANCELLED | RELEASE | LOST; returns the new state."""
        result = with_retry(
            lambda: self._finish(
                keys=[
                    keys.job(lease.job_id),
                    keys.events(lease.job_id),
                    keys.LEASES,
                    keys.queue(lease.kind),
                ],
                args=[
                    lease.job_id,
                    lease.attempt,
                    outcome,
                    reason[:2000],
                    max_retries,
                    self._events_maxlen,
                    keys.QUEUE_MAXLEN,
                ],
            ),
            self.retry_s,
        )
        if result[0] != "ok":
            raise LeaseLost(
                f"final state refused: job {lease.job_id} attempt {lease.attempt} is stale"
            )
        return result[1]

    def still_mine(self, lease: Lease) -> bool:
        state, attempt = with_retry(
            lambda: self.redis.hmget(keys.job(lease.job_id), "state", "attempt"), self.retry_s
        )
        return attempt == str(lease.attempt) and state in ("RUNNING", "CANCELLING")

    def job_tenant(self, job_id: str) -> str:
        """The tenant the server recorded for the job ("" if the record is gone)."""
        return with_retry(lambda: self.redis.hget(keys.job(job_id), "tenant"), self.retry_s) or ""

    def latest_checkpoint(self, job_id: str) -> CheckpointRecord | None:
        entries = with_retry(lambda: self.redis.hvals(keys.checkpoints(job_id)), self.retry_s)
        records = [CheckpointRecord.from_json(e) for e in entries]
        return max(records, key=lambda c: c.step) if records else None
