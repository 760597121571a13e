"""Retention of finished jobs: archive to the artifact store, then delete the Redis keys.

A job that finished (SUCCEEDED, FAILED, CANCELLED) more than `finished_job_ttl_s` ago (Redis
clock) is written to `<artifact_dir>/<job_id>/archive.json` (record, events, checkpoints) and then
its keys (record, events, metrics, checkpoint list, index entries) are deleted by one script that
checks the job did not change in between. GetJob, WatchJob and ListCheckpoints then answer from
the archive; ListJobs no longer lists the job. Runs in the reaper loop of every front end; two
front ends retiring the same job write the same archive and only one delete succeeds.
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

from wildrobot.queue import keys, scripts
from wildrobot.specs import TERMINAL_STATES

from .archive import ArchivedJob, JobArchive

log = logging.getLogger(__name__)

BATCH = 100
FINISHED_STATES = frozenset(s.value for s in TERMINAL_STATES)


class Retention:
    def __init__(self, client: aioredis.Redis, archive: JobArchive, ttl_s: float) -> None:
        self._redis = client
        self._archive = archive
        self._ttl_ms = int(ttl_s * 1000)
        self._retire = client.register_script(scripts.RETIRE)

    async def retire_expired(self) -> list[str]:
        """One pass; returns the ids of the jobs retired. Nothing when the TTL is 0 (keep)."""
        if self._ttl_ms <= 0:
            return []
        seconds, micros = await self._redis.time()
        cutoff = seconds * 1000 + micros // 1000 - self._ttl_ms
        due = await self._redis.zrangebyscore(keys.FINISHED, "-inf", cutoff, start=0, num=BATCH)
        retired = []
        for job_id in due:
            if await self.retire(job_id):
                retired.append(job_id)
        return retired

    async def retire(self, job_id: str) -> bool:
        record = await self._redis.hgetall(keys.job(job_id))
        if not record:
            await self._redis.zrem(keys.FINISHED, job_id)
            return False
        if record.get("state") not in FINISHED_STATES:
            return False
        entries = await self._redis.xrange(keys.events(job_id))
        events = [{"seq": int(entry_id.split("-", 1)[0]), **fields} for entry_id, fields in entries]
        checkpoints = await self._redis.hvals(keys.checkpoints(job_id))
        await self._archive.write(job_id, ArchivedJob(record, events, checkpoints))
        result = await self._retire(
            keys=[
                keys.job(job_id),
                keys.events(job_id),
                keys.metrics(job_id),
                keys.checkpoints(job_id),
                keys.FINISHED,
            ],
            args=[job_id, record.get("finished_at", "")],
        )
        if result[0] == "ok":
            log.info("job %s retired to %s", job_id, self._archive.path(job_id))
            return True
        return False
