"""num_hosts `wildrobot-host` processes on this machine (CPU collectives): what tests and a
single box run. It refuses more hosts than it can place: more than `max_hosts`
(WILDROBOT_LOCAL_MAX_HOSTS, default this machine's CPU count)."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from .plan import EXIT_STOPPED, LaunchFailed, LaunchPlan

log = logging.getLogger(__name__)

MAX_HOSTS_ENV = "WILDROBOT_LOCAL_MAX_HOSTS"
# Share of a device's memory JAX preallocates in one process; local hosts split it.
DEVICE_MEMORY_FRACTION = 0.75


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def default_max_hosts(environ: dict[str, str] | os._Environ | None = None) -> int:
    environ = os.environ if environ is None else environ
    if MAX_HOSTS_ENV in environ:
        value = int(environ[MAX_HOSTS_ENV])
        if value < 1:
            raise ValueError(f"{MAX_HOSTS_ENV}: must be at least 1, got {value}")
        return value
    return os.cpu_count() or 1


class LocalHostGroup:
    def __init__(self, procs: list[subprocess.Popen]) -> None:
        self.procs = procs

    def poll(self) -> int | None:
        codes = [p.poll() for p in self.procs]
        failed = [c for c in codes if c not in (None, 0, EXIT_STOPPED)]
        if failed:
            self.kill()  # one host gone: the others would wait for it in a collective
            return failed[0]
        if None in codes:
            return None
        return EXIT_STOPPED if EXIT_STOPPED in codes else 0

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            proc.wait()


class LocalHostLauncher:
    """num_hosts processes here, coordinator on a free loopback port; at most `max_hosts`."""

    def __init__(self, log_dir: Path | None = None, max_hosts: int | None = None) -> None:
        self.log_dir = log_dir
        self.max_hosts = default_max_hosts() if max_hosts is None else max_hosts

    def start(self, plan: LaunchPlan) -> LocalHostGroup:
        if plan.num_hosts > self.max_hosts:
            raise LaunchFailed(
                f"num_hosts: {plan.num_hosts} hosts cannot be placed on this machine; the local "
                f"launcher starts at most {self.max_hosts} ({MAX_HOSTS_ENV}, default the CPU "
                "count)"
            )
        coordinator = f"127.0.0.1:{_free_port()}"
        log_dir = self.log_dir or plan.run_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        # The hosts share this machine's devices: each preallocates its share, not 75% each.
        fraction = f"{DEVICE_MEMORY_FRACTION / plan.num_hosts:.3f}"
        procs = []
        for index in range(plan.num_hosts):
            env = dict(os.environ, **plan.host_env(coordinator), JOB_COMPLETION_INDEX=str(index))
            env.pop("WILDROBOT_PROCESS_ID", None)
            env.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", fraction)
            with (log_dir / f"host-{plan.attempt}-{index}.log").open("ab") as out:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "wildrobot.workers.host", *plan.host_args()],
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        log.info("job %s: %d local hosts, coordinator %s", plan.job_id, plan.num_hosts, coordinator)
        return LocalHostGroup(procs)
