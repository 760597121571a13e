"""Archives of retired jobs in the artifact store: `<artifact_dir>/<job_id>/archive.json`.

Written (atomically: temporary file, then rename) by retention before a finished job's Redis keys
are deleted; read by GetJob/WatchJob/ListCheckpoints when the record is no longer in Redis. The
JSON holds the record hash as stored, every event still in its stream, and the registered
checkpoints.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ARCHIVE_FILE = "archive.json"
FORMAT = 1


@dataclass(frozen=True)
class ArchivedJob:
    record: dict[str, str]
    events: list[dict[str, Any]]  # {"seq", "t", "ts", "d"} as in the stream
    checkpoints: list[str]  # the registered checkpoint infos (JSON), as in Redis


class JobArchive:
    def __init__(self, artifact_dir: Path) -> None:
        self._root = Path(artifact_dir)

    def path(self, job_id: str) -> Path:
        return self._root / job_id / ARCHIVE_FILE

    def write_sync(self, job_id: str, job: ArchivedJob) -> Path:
        final = self.path(job_id)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{ARCHIVE_FILE}.tmp-{os.getpid()}")
        payload = {
            "format": FORMAT,
            "record": job.record,
            "events": job.events,
            "checkpoints": job.checkpoints,
        }
        with tmp.open("w") as handle:
            json.dump(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, final)
        return final

    def read_sync(self, job_id: str) -> ArchivedJob | None:
        try:
            payload = json.loads(self.path(job_id).read_text())
        except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
            return None
        return ArchivedJob(
            record={str(k): str(v) for k, v in payload["record"].items()},
            events=list(payload.get("events", [])),
            checkpoints=list(payload.get("checkpoints", [])),
        )

    async def write(self, job_id: str, job: ArchivedJob) -> Path:
        return await asyncio.to_thread(self.write_sync, job_id, job)

    async def read(self, job_id: str) -> ArchivedJob | None:
        return await asyncio.to_thread(self.read_sync, job_id)
