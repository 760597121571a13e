"""Where a job's files live under the artifact directory (one place for the layout).

    <artifact_dir>/<job_id>/attempt-<n>/checkpoints/<step:012d>/   what attempt n wrote
    <artifact_dir>/<job_id>/tensorboard/                           scalars of every attempt
    <artifact_dir>/<job_id>/archive.json                           a retired job (server side)

Every attempt writes only under its own `attempt-<n>` folder, so a stale attempt (its lease
lost, still running somewhere) can never clobber or delete the files of the attempt that
replaced it, and a new attempt never deletes anything. Files become part of the job only when
the fenced Redis write that registers them succeeds (wildrobot.queue.client).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ATTEMPT_PREFIX = "attempt-"


def job_dir(artifact_dir: Path, job_id: str) -> Path:
    return Path(artifact_dir) / job_id


def attempt_dir(artifact_dir: Path, job_id: str, attempt: int) -> Path:
    return job_dir(artifact_dir, job_id) / f"{ATTEMPT_PREFIX}{attempt}"


def artifact_root(run_dir: Path) -> Path:
    """The artifact directory a handler's run_dir (an attempt folder) lies in."""
    run_dir = Path(run_dir).resolve()
    if run_dir.name.startswith(ATTEMPT_PREFIX):
        return run_dir.parent.parent
    return run_dir.parent


def install_dir(src: Path, dst: Path) -> bool:
    """Renames the finished folder src to dst (atomic, same file system); True if it did.

    Nothing is ever swapped in place: when dst already exists (the same step written again by
    the same attempt) it is complete and stays, and src is dropped (False).
    """
    try:
        os.rename(src, dst)
    except OSError:
        if not Path(dst).is_dir():
            raise
        shutil.rmtree(src, ignore_errors=True)
        return False
    return True
