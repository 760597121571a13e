"""The runner's side of a multi-host attempt: start the hosts, hold the lease while they run,
pass a cancel or shutdown on, and turn their end into the attempt's outcome."""

from __future__ import annotations

import time
from pathlib import Path

from wildrobot.specs import PpoSpec

from ..handlers import HandlerResult, JobContext, JobError
from .plan import EXIT_LEASE_LOST, EXIT_STOPPED, STOP_GRACE_S, HostLauncher, LaunchPlan

POLL_S = 1.0


def last_checkpoint_step(run_dir: Path) -> int:
    """Env steps of the newest checkpoint process 0 wrote (directory names are the steps)."""
    steps = [int(p.name) for p in (run_dir / "checkpoints").glob("[0-9]*") if p.name.isdigit()]
    return max(steps, default=0)


def run_multi_host(
    context: JobContext, spec: PpoSpec, launcher: HostLauncher | None = None
) -> HandlerResult:
    """Runs one attempt on spec.num_hosts hosts and waits; the caller holds the lease."""
    if not context.redis_url:
        raise JobError("a multi-host job needs the worker's Redis URL for fenced writes")
    if launcher is None:
        from . import launcher_from_env

        launcher = launcher_from_env()
    context.run_dir.mkdir(parents=True, exist_ok=True)
    spec_file = context.run_dir / f"spec-attempt-{context.attempt}.json"
    spec_file.write_text(spec.model_dump_json())
    plan = LaunchPlan(
        job_id=context.job_id,
        attempt=context.attempt,
        num_hosts=spec.num_hosts,
        spec_file=spec_file,
        run_dir=context.run_dir,
        resume_from=context.resume_from,
        redis_url=context.redis_url,
        launched_by=context.worker_id,
    )
    context.publish.log("info", f"attempt {context.attempt}: {spec.num_hosts} hosts ({plan.name})")
    group = launcher.start(plan)
    stop_sent = None
    try:
        while (code := group.poll()) is None:
            if stop_sent is None and context.should_stop():  # raises LeaseLost when stale
                group.stop()
                stop_sent = time.monotonic()
            if stop_sent is not None and time.monotonic() - stop_sent > STOP_GRACE_S:
                group.kill()
            time.sleep(POLL_S)
    except BaseException:
        group.kill()
        raise
    if code in (0, EXIT_STOPPED):
        return HandlerResult(final_step=last_checkpoint_step(context.run_dir), stopped=code != 0)
    if code == EXIT_LEASE_LOST:
        from wildrobot.queue.client import LeaseLost

        raise LeaseLost(f"job {context.job_id}: process 0 found attempt {context.attempt} stale")
    raise RuntimeError(f"a host of the {spec.num_hosts}-host run exited with code {code}")
