"""Every Redis key, stream, group, TTL and cap used by the job service (one place, as arq does).

Layout (all under the `wr:` prefix):
    wr:job:<id>                 hash    the job record, the source of truth (fields `w:<writer>`:
                                        the last write id applied per writer, so a retried
                                        fenced write is applied once)
    wr:job:<id>:events          stream  per-job events, entry id "<seq>-0", capped at EVENTS_MAXLEN
    wr:job:<id>:metrics         stream  every metric point of the job, entry id "<seq>-0" (the
                                        event's seq), field d = the event JSON; written in the
                                        same fenced script as the event, capped at METRICS_MAXLEN
    wr:job:<id>:ckpt            hash    step -> JSON checkpoint info (registered, fenced)
    wr:idx:<tenant>             zset    job ids of a tenant, score = global submit order
    wr:idx:<tenant>:<kind>      zset    the same, per job kind
    wr:idem:<tenant>:<req>      string  request_id -> job id (idempotent submit), IDEMPOTENCY_TTL_S
    wr:queue:<kind>             stream  one entry per queued attempt; group QUEUE_GROUP
    wr:leases                   zset    running job ids, score = lease expiry (ms, Redis clock)
    wr:seq:submit               string  global submit counter (index scores; unique and ordered)
    wr:tenant:<tenant>:queued   set     the tenant's PENDING/RECOVERING job ids (pending quota)
    wr:tenant:<tenant>:running  set     the tenant's RUNNING/CANCELLING job ids (running quota)
    wr:finished                 zset    finished job ids, score = finished_at (ms): retention

Every state change goes through `emit_state` in scripts.py, which also keeps the two tenant sets
and wr:finished up to date (idempotent SADD/SREM/ZADD, so nothing drifts). Queue entries are
XDEL'd when taken (or found stale), so a kind's stream holds only waiting work. Finished jobs
older than the retention are archived to the artifact store and their keys deleted (RETIRE).
"""

from __future__ import annotations

PREFIX = "wr"
QUEUE_GROUP = "workers"
REAPER_CONSUMER = "reaper"

EVENTS_MAXLEN = 10_000  # per-job event stream cap (approximate trimming)
# Per-job metric history cap (approximate trimming): a safety limit, not a window. A 20e9-step
# run at the default 163 840 env steps per iteration reports ~122 000 points.
METRICS_MAXLEN = 250_000
IDEMPOTENCY_TTL_S = 7 * 24 * 3600
QUEUE_MAXLEN = 1_000_000  # safety cap on a kind's stream; entries are XDEL'd when taken
# Retention: a finished job's keys live this long after it finished, then it is archived to the
# artifact store (<artifact_dir>/<job_id>/archive.json) and its keys are deleted. 0: kept forever.
FINISHED_JOB_TTL_S = 7 * 24 * 3600
DEFAULT_MAX_PENDING_PER_TENANT = 1000  # PENDING/RECOVERING jobs of one tenant; 0: no quota
DEFAULT_MAX_RUNNING_PER_TENANT = 100  # RUNNING/CANCELLING jobs of one tenant; 0: no quota

DEFAULT_LEASE_S = 15.0
DEFAULT_HEARTBEAT_S = 3.0
DEFAULT_MAX_RETRIES = 3  # lost leases before a job is failed


def job(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}"


def events(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}:events"


def metrics(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}:metrics"


def checkpoints(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}:ckpt"


def tenant_index(tenant: str, kind: str | None = None) -> str:
    return f"{PREFIX}:idx:{tenant}" if kind is None else f"{PREFIX}:idx:{tenant}:{kind}"


def idempotency(tenant: str, request_id: str) -> str:
    return f"{PREFIX}:idem:{tenant}:{request_id}"


def queue(kind: str) -> str:
    return f"{PREFIX}:queue:{kind}"


def tenant_queued(tenant: str) -> str:
    return f"{PREFIX}:tenant:{tenant}:queued"


def tenant_running(tenant: str) -> str:
    return f"{PREFIX}:tenant:{tenant}:running"


# Lua builds the two tenant keys from the tenant it reads in the record (scripts.py).
TENANT_KEY_PREFIX = f"{PREFIX}:tenant:"
FINISHED = f"{PREFIX}:finished"
LEASES = f"{PREFIX}:leases"
SUBMIT_SEQ = f"{PREFIX}:seq:submit"


# Event seqs come from HINCRBY on the job hash (a signed 64-bit integer): none is larger. A
# reader's `since`/`after`/`until` beyond it is refused (Redis rejects such stream ids).
MAX_SEQ = 2**63 - 1


def event_id(seq: int) -> str:
    """Stream entry id of event `seq`: XRANGE/XREAD after `event_id(n)` gives seq > n."""
    return f"{seq}-0"
