"""The supervisor: takes one job at a time, runs it in a runner process, renews the lease.

The lease heartbeat lives here, not in the JAX process, so a long compile never looks like a dead
worker. The supervisor restarts nothing by itself: a runner that dies is reported (LOST, counts as
a retry) and the job goes back to the queue for whichever worker is free.

How an attempt ends (the supervisor writes it, fenced by the attempt):
    runner finished            -> SUCCEEDED
    runner stopped, cancelled  -> CANCELLED (it checkpointed first)
    runner stopped, SIGTERM    -> RECOVERING, re-queued; a release does not use up a retry
    error in the job           -> FAILED with the reason, not retried
    runner died / Redis gone   -> RECOVERING (counts as a retry; FAILED past max_retries)
    lease lost                 -> nothing: another attempt owns the job; the runner is killed
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import threading
import time
from multiprocessing.connection import wait

import redis.exceptions

from wildrobot.queue.client import Lease, LeaseLost, QueueClient, connect

from . import runner
from .config import WorkerConfig
from .metrics import WorkerMetrics

log = logging.getLogger("wildrobot.workers.supervisor")


class Supervisor:
    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.queue = QueueClient(
            connect(config.redis_url), max_running_per_tenant=config.max_running_jobs_per_tenant
        )
        self._shutdown = threading.Event()
        self._mp = mp.get_context("spawn")
        self._kinds = [k.value for k in config.kinds]
        self.metrics = WorkerMetrics()

    def request_shutdown(self) -> None:
        self._shutdown.set()

    def run(self) -> int:
        cfg = self.config
        log.info(
            "worker %s: kinds %s (multihost: %s), artifacts in %s",
            cfg.worker_id,
            self._kinds,
            cfg.multihost,
            cfg.artifact_dir,
        )
        groups_ready = False
        while not self._shutdown.is_set():
            try:
                if not groups_ready:
                    self.queue.ensure_groups(self._kinds)
                    groups_ready = True
                lease = self.queue.take(
                    self._kinds, cfg.worker_id, cfg.lease_s, cfg.poll_ms, cfg.multihost
                )
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
                log.warning("redis unavailable (%s)", exc)
                self._shutdown.wait(1.0)
                continue
            except redis.exceptions.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                groups_ready = False  # Redis lost its data (no AOF?): recreate the groups
                continue
            if lease is None:
                continue
            self.run_job(lease)
            if cfg.once:
                break
        log.info("worker %s: stopped", cfg.worker_id)
        return 0

    def run_job(self, lease: Lease) -> None:
        cfg = self.config
        log.info("job %s: attempt %d taken", lease.job_id, lease.attempt)
        stop, lost = self._mp.Event(), self._mp.Event()
        receiver, sender = self._mp.Pipe(duplex=False)
        self.metrics.job_started(lease.job_id, lease.kind, lease.attempt)
        args = runner.RunnerArgs(
            lease, cfg.redis_url, str(cfg.artifact_dir), log_format=cfg.log_format
        )
        proc = self._mp.Process(
            target=runner.run, args=(args, stop, lost, sender), name=f"runner-{lease.job_id[:8]}"
        )
        proc.start()
        sender.close()
        outcome: tuple[str, int, str] | None = None
        cancelled = False
        stop_since: float | None = None
        next_renew = time.monotonic() + cfg.heartbeat_s
        while True:
            ready = wait([receiver, proc.sentinel], timeout=max(0.0, next_renew - time.monotonic()))
            if receiver in ready:
                message = None
                with contextlib.suppress(EOFError):
                    message = receiver.recv()
                if message is not None and message[0] == runner.PROGRESS:
                    self.metrics.progress(message[1])
                else:
                    outcome = message[1] if message is not None else None
                    self._join_renewing(proc, lease)
                    break
            if proc.sentinel in ready:
                proc.join()
                break
            if time.monotonic() >= next_renew:
                next_renew = time.monotonic() + cfg.heartbeat_s
                try:
                    state = self.queue.renew(lease, cfg.lease_s)
                except LeaseLost:
                    log.warning("job %s: lease lost; stopping the runner", lease.job_id)
                    lost.set()
                    proc.kill()
                    proc.join()
                    self.metrics.job_ended("lost")
                    return
                except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
                    log.warning("job %s: heartbeat failed (%s)", lease.job_id, exc)
                    state = ""
                if state == "CANCELLING" and not cancelled:
                    log.info("job %s: cancel requested", lease.job_id)
                    cancelled = True
                    stop.set()
            if self._shutdown.is_set() and not stop.is_set():
                log.info("job %s: shutting down; asking the runner to checkpoint", lease.job_id)
                stop.set()
            if stop.is_set():
                stop_since = stop_since or time.monotonic()
                if time.monotonic() - stop_since > cfg.stop_grace_s:
                    log.error("job %s: runner ignored the stop; killing it", lease.job_id)
                    proc.kill()
        receiver.close()
        self._finish(lease, outcome, proc.exitcode, cancelled)

    def _join_renewing(self, proc: mp.process.BaseProcess, lease: Lease) -> None:
        """Waits up to 30 s for a runner that has reported to exit, renewing the lease meanwhile:
        tearing down a process that holds large compiled programs (the WildRobot envs) can take
        longer than a short lease, and the outcome must not be refused as stale for that."""
        deadline = time.monotonic() + 30.0
        while proc.is_alive() and time.monotonic() < deadline:
            proc.join(self.config.heartbeat_s)
            if proc.is_alive():
                with contextlib.suppress(
                    LeaseLost, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError
                ):
                    self.queue.renew(lease, self.config.lease_s)

    def _finish(
        self,
        lease: Lease,
        outcome: tuple[str, int, str] | None,
        exitcode: int | None,
        cancelled: bool,
    ) -> None:
        status, step, reason = outcome or (
            "infra",
            0,
            f"runner process exited with code {exitcode}",
        )
        self.metrics.job_ended(status)
        if status == "lost":
            log.warning("job %s attempt %d: lost (%s)", lease.job_id, lease.attempt, reason)
            return
        if status == "succeeded":
            final, reason = "SUCCEEDED", ""
        elif status == "stopped" and cancelled:
            final, reason = "CANCELLED", f"cancelled at step {step}"
        elif status == "stopped":
            final = "RELEASE"
            reason = f"worker {self.config.worker_id} shut down at step {step}; re-queued"
        elif status == "failed":
            final = "FAILED"
        else:
            final = "LOST"
        self._write_final(lease, final, reason)

    def _write_final(self, lease: Lease, final: str, reason: str) -> None:
        """Writes the attempt's end, retrying with backoff for as long as Redis is away: a Redis
        outage at this point must neither crash the worker nor drop the outcome. Only a shutdown
        gives up (the lease then expires and the reaper re-queues the job)."""
        delay = 1.0
        while True:
            try:
                state = self.queue.finish(lease, final, reason, self.config.max_retries)
                log.info("job %s attempt %d: %s %s", lease.job_id, lease.attempt, state, reason)
                return
            except LeaseLost as exc:
                log.warning("job %s: %s", lease.job_id, exc)
                return
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
                if self._shutdown.is_set():
                    log.error(
                        "job %s: redis unavailable while shutting down (%s); %s not written, "
                        "the lease will expire and the job be re-queued",
                        lease.job_id,
                        exc,
                        final,
                    )
                    return
                log.warning(
                    "job %s: redis unavailable writing %s (%s); retrying in %.0f s",
                    lease.job_id,
                    final,
                    exc,
                    delay,
                )
                self._shutdown.wait(delay)
                delay = min(2 * delay, 30.0)
