"""Launching a multi-host PPO attempt (spec.num_hosts > 1) from the worker that holds its lease.

The worker's runner does not train such a job itself: it writes the spec next to the run, starts
`wildrobot-host` on num_hosts hosts through a `HostLauncher`, and waits (run.py). The lease,
cancel and fencing rules stay with the launching worker: its supervisor renews the lease as for
any job; a cancel or shutdown makes the runner stop the hosts (process 0 checkpoints first); and
process 0 publishes through writes fenced by this attempt, so once the lease is lost (the worker
died or froze) its writes are refused and the hosts stop by themselves.

    plan.py        LaunchPlan (what every host gets), the HostGroup/HostLauncher protocols
    local.py       LocalHostLauncher: N processes on this machine (CPU collectives); tests
    manifests.py   the Indexed Job + headless Service of an attempt, as dicts
    kubernetes.py  KubernetesHostLauncher: those objects through the `kubernetes` client
    run.py         run_multi_host: the runner's side

WILDROBOT_MULTIHOST_LAUNCHER (local | kubernetes) picks the launcher.
"""

from __future__ import annotations

import os

from ..handlers import JobError
from .kubernetes import KubernetesHostLauncher
from .local import LocalHostLauncher, default_max_hosts
from .manifests import KubernetesSettings
from .plan import HostLauncher

LAUNCHER_ENV = "WILDROBOT_MULTIHOST_LAUNCHER"  # local | kubernetes


def launcher_from_env(environ: dict[str, str] | os._Environ | None = None) -> HostLauncher:
    environ = os.environ if environ is None else environ
    kind = environ.get(LAUNCHER_ENV, "local")
    if kind == "local":
        return LocalHostLauncher(max_hosts=default_max_hosts(environ))
    if kind == "kubernetes":
        return KubernetesHostLauncher(KubernetesSettings.from_env(environ))
    raise JobError(f"{LAUNCHER_ENV}={kind!r} is not local or kubernetes")
