"""The runner process: runs one job attempt's handler (JAX) and reports how it ended.

Started by the supervisor with the `spawn` method, one per attempt. Progress leaves it only
through fenced writes (`QueueClient`); a refused write means another attempt owns the job, so it
raises `LeaseLost` and stops without writing a checkpoint. The outcome goes back over a pipe as
(status, final_step, reason) with status succeeded | stopped | failed | lost | infra.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path

import redis.exceptions

from wildrobot.logs import configure_logging
from wildrobot.queue.client import Lease, LeaseLost, QueueClient, connect, finite_values
from wildrobot.specs import spec_from_json

from . import layout
from .handlers import JobContext, get_handler
from .tensorboard import ScalarLog

log = logging.getLogger("wildrobot.workers.runner")


@dataclass(frozen=True)
class RunnerArgs:
    lease: Lease
    redis_url: str
    artifact_dir: str
    retry_s: float = 60.0
    log_format: str = "text"


# Messages on the pipe to the supervisor: (PROGRESS, values) any number of times, then
# (OUTCOME, (status, final_step, reason)) once.
PROGRESS = "progress"
OUTCOME = "outcome"


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class FencedPublisher:
    """Metrics, checkpoint registrations and log lines, each refused once the attempt is stale."""

    def __init__(
        self,
        queue: QueueClient,
        lease: Lease,
        artifact_dir: Path,
        scalars: ScalarLog | None = None,
        progress: Callable[[dict[str, float]], None] | None = None,
    ) -> None:
        self._queue = queue
        self._progress = progress
        self._lease = lease
        self._artifact_dir = artifact_dir
        self._scalars = scalars
        self._start = time.monotonic()

    def metrics(self, step: int, values: dict[str, float]) -> None:
        rate = float(values.get("env_steps_per_s", 0.0))
        self._queue.metrics(self._lease, step, values, time.monotonic() - self._start, rate)
        if self._scalars is not None:  # after the fenced write
            self._scalars.write(step, finite_values(values), time.time())
        if self._progress is not None:
            self._progress(dict(values, **device_memory()))

    def checkpoint(self, step: int, path: Path, best: bool = False) -> None:
        path = Path(path).resolve()
        rel = path.relative_to(self._artifact_dir)
        self._queue.checkpoint(self._lease, step, str(rel), dir_size(path), best=best)

    def log(self, level: str, message: str) -> None:
        self._queue.log_line(self._lease, level, message)


def device_memory() -> dict[str, float]:
    """Bytes in use per local accelerator (GPU); empty on CPU or before JAX is loaded."""
    if "jax" not in sys.modules:
        return {}
    import jax

    found: dict[str, float] = {}
    for device in jax.local_devices():
        stats = device.memory_stats() if device.platform != "cpu" else None
        if stats and "bytes_in_use" in stats:
            found[f"device_memory_bytes/{device.platform}:{device.id}"] = float(
                stats["bytes_in_use"]
            )
    return found


def run(args: RunnerArgs, stop: Event, lost: Event, conn: Connection) -> None:
    """Entry point of the runner process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the supervisor, which decides
    configure_logging(args.log_format)
    logging.getLogger("absl").setLevel(logging.WARNING)  # orbax logs every save step at INFO
    lease = args.lease
    parent = os.getppid()
    queue = QueueClient(connect(args.redis_url), retry_s=args.retry_s)
    artifact_dir = Path(args.artifact_dir).resolve()
    scalars: ScalarLog | None = None

    def should_stop() -> bool:
        if lost.is_set() or os.getppid() != parent:
            raise LeaseLost("the supervisor lost the lease (or died)")
        if stop.is_set():
            if not queue.still_mine(lease):  # never write a final checkpoint for a stale attempt
                raise LeaseLost(f"job {lease.job_id} attempt {lease.attempt} is stale")
            return True
        return False

    try:
        spec = spec_from_json(lease.kind, lease.spec_json)
        latest = queue.latest_checkpoint(lease.job_id)
        resume_from = artifact_dir / latest.path if latest is not None else None
        if resume_from is not None and not resume_from.is_dir():
            raise FileNotFoundError(f"registered checkpoint {resume_from} is missing")
        # This attempt's own folder: nothing of an earlier (maybe still running, stale) attempt
        # is deleted or overwritten; only registered checkpoints are ever resumed from.
        run_dir = layout.attempt_dir(artifact_dir, lease.job_id, lease.attempt)
        scalars = ScalarLog(
            layout.job_dir(artifact_dir, lease.job_id) / "tensorboard",
            lease.attempt,
            latest.step if latest is not None else None,
        )
        context = JobContext(
            job_id=lease.job_id,
            attempt=lease.attempt,
            run_dir=run_dir,
            resume_from=resume_from,
            publish=FencedPublisher(
                queue,
                lease,
                artifact_dir,
                scalars,
                lambda values: conn.send((PROGRESS, values)),
            ),
            should_stop=should_stop,
            redis_url=args.redis_url,
            worker_id=lease.owner,
            tenant=queue.job_tenant(lease.job_id),
        )
        log.info(
            "job %s attempt %d: start (resume from %s)", lease.job_id, lease.attempt, resume_from
        )
        if latest is not None:
            context.publish.log(
                "info", f"attempt {lease.attempt} resumes from the checkpoint at step {latest.step}"
            )
        result = get_handler(lease.kind)(context, spec)
        conn.send((OUTCOME, ("stopped" if result.stopped else "succeeded", result.final_step, "")))
    except LeaseLost as exc:
        log.warning("job %s: %s", lease.job_id, exc)
        conn.send((OUTCOME, ("lost", 0, str(exc))))
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        conn.send((OUTCOME, ("infra", 0, f"redis unavailable: {exc}")))
    except Exception as exc:  # noqa: BLE001 - an error in the job itself: FAILED, not retried
        log.exception("job %s failed", lease.job_id)
        conn.send((OUTCOME, ("failed", 0, f"{type(exc).__name__}: {exc}")))
    finally:
        if scalars is not None:
            scalars.close()
        conn.close()
