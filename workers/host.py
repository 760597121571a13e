"""`wildrobot-host`: one process (host) of a multi-host PPO run, as started in each pod of the
Kubernetes Indexed Job a worker launches (wildrobot.workers.launch), or as N local processes.

    wildrobot-host --spec-file spec.json --run-dir /artifacts/<job_id> [--resume-from DIR]

jax.distributed comes up from WILDROBOT_COORDINATOR / WILDROBOT_NUM_PROCESSES /
WILDROBOT_PROCESS_ID (or JOB_COMPLETION_INDEX). Process 0 writes the checkpoints and, when
WILDROBOT_REDIS_URL, WILDROBOT_JOB_ID and WILDROBOT_ATTEMPT are set, publishes metrics and
checkpoint registrations through the same fenced writes as a runner: once the launching worker
has lost the lease its writes are refused and the run stops. SIGTERM on process 0 (the launching
worker deleting the Job on cancel or shutdown) makes every host checkpoint and stop at the same
iteration. The exit code says how it ended: 0 finished, 3 stopped early, 4 lease lost.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from wildrobot.logs import configure_logging

EXIT_STOPPED = 3
EXIT_LEASE_LOST = 4
log = logging.getLogger("wildrobot.workers.host")


class HostHooks:
    """Process 0's hooks: fenced publishing when a lease is given, else nothing but a log line."""

    def __init__(self, stop: threading.Event, publisher: object | None) -> None:
        self._stop = stop
        self._publisher = publisher

    def on_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        if self._publisher is not None:
            self._publisher.metrics(step, dict(metrics))  # type: ignore[attr-defined]

    def on_checkpoint(self, step: int, path: Path, best: bool = False) -> None:
        log.info("checkpoint at step %d: %s%s", step, path, " (best)" if best else "")
        if self._publisher is not None:
            self._publisher.checkpoint(step, path, best=best)  # type: ignore[attr-defined]

    def should_stop(self) -> bool:
        return self._stop.is_set()


def _publisher(spec_json: str, run_dir: Path) -> object | None:
    env = os.environ
    if not all(k in env for k in ("WILDROBOT_REDIS_URL", "WILDROBOT_JOB_ID", "WILDROBOT_ATTEMPT")):
        return None
    from wildrobot.queue.client import Lease, QueueClient, connect

    from .runner import FencedPublisher

    lease = Lease(
        job_id=env["WILDROBOT_JOB_ID"],
        attempt=int(env["WILDROBOT_ATTEMPT"]),
        kind="ppo",
        spec_json=spec_json,
        owner=env.get("WILDROBOT_LAUNCHED_BY", ""),
    )
    queue = QueueClient(connect(env["WILDROBOT_REDIS_URL"]))
    from .layout import artifact_root

    return FencedPublisher(queue, lease, artifact_root(run_dir))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wildrobot-host", description=__doc__.splitlines()[0])
    parser.add_argument("--spec-file", type=Path, required=True, help="the PpoSpec as JSON")
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--resume-from", type=Path)
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    # First thing: a stop that arrives while JAX starts must not kill a host mid-collective.
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    configure_logging(args.log_format)
    logging.getLogger("absl").setLevel(logging.WARNING)

    from wildrobot.queue.client import LeaseLost
    from wildrobot.specs import PpoSpec

    from .training import distributed

    multi = distributed.initialize_from_env()
    # Again: jax.distributed installs its own SIGTERM handler (preemption notices).
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    import jax

    from .training.ppo import train_ppo

    spec_json = args.spec_file.read_text()
    spec = PpoSpec.model_validate_json(spec_json)
    leader = distributed.is_leader()
    hooks = HostHooks(stop, _publisher(spec_json, args.run_dir) if leader else None)
    try:
        result = train_ppo(spec, args.run_dir, hooks, resume_from=args.resume_from)
    except LeaseLost as exc:
        log.warning("stopping: %s", exc)
        code = EXIT_LEASE_LOST
    except BaseException:
        log.exception("host %d failed", jax.process_index())
        code = 1
    else:
        code = 0
    if code != 0:
        # No shutdown barrier: the other hosts wait in a collective for this one; ending the
        # process makes the coordination service fail them at once instead of at its timeout.
        logging.shutdown()
        os._exit(code)
    if multi:
        jax.distributed.shutdown()
    log.info(
        "done: %d iterations, %d env steps%s",
        result.iterations, result.final_step, " (stopped)" if result.stopped else "",
    )  # fmt: skip
    return EXIT_STOPPED if result.stopped else 0


if __name__ == "__main__":
    sys.exit(main())
