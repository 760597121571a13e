"""Multi-host runs: jax.distributed from the environment, and which slice of the run is ours.

A process of an N-host run is started with
    WILDROBOT_COORDINATOR   host:port of process 0's coordinator (e.g. <job>-0.<service>:8476)
    WILDROBOT_NUM_PROCESSES N
    WILDROBOT_PROCESS_ID    its index, or JOB_COMPLETION_INDEX (a Kubernetes Indexed Job sets it)
`initialize_from_env()` calls jax.distributed.initialize with them (CPU processes use the gloo
collectives), after which pmap spans every process's devices: gradients, normalizer statistics
and metrics are reduced across hosts. Without WILDROBOT_COORDINATOR it does nothing (one host).

The run's batch is global: device d of the jax.device_count() global devices gets row d of
every per-device array (env keys, RNG), exactly as one process with that many local devices
would. This process owns rows [first_row, first_row + local_device_count).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import jax

log = logging.getLogger(__name__)

COORDINATOR_ENV = "WILDROBOT_COORDINATOR"
NUM_PROCESSES_ENV = "WILDROBOT_NUM_PROCESSES"
PROCESS_ID_ENV = "WILDROBOT_PROCESS_ID"
INDEX_ENV = "JOB_COMPLETION_INDEX"  # set by Kubernetes in every pod of an Indexed Job
INIT_TIMEOUT_S = 600


def process_from_env(environ: Mapping[str, str]) -> tuple[str, int, int] | None:
    """(coordinator, num_processes, process_id) from the environment, or None for one host."""
    coordinator = environ.get(COORDINATOR_ENV)
    if not coordinator:
        return None
    num = int(environ[NUM_PROCESSES_ENV])
    pid = int(environ.get(PROCESS_ID_ENV) or environ[INDEX_ENV])
    if not 0 <= pid < num:
        raise ValueError(f"process id {pid} is outside 0..{num - 1}")
    return coordinator, num, pid


def initialize_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """jax.distributed.initialize from the environment; True when this is a multi-host run."""
    found = process_from_env(os.environ if environ is None else environ)
    if found is None:
        return False
    coordinator, num, pid = found
    if jax.config.jax_platforms in (None, "", "cpu") or os.environ.get("JAX_PLATFORMS") == "cpu":
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=coordinator,
        num_processes=num,
        process_id=pid,
        initialization_timeout=INIT_TIMEOUT_S,
    )
    log.info(
        "process %d of %d (coordinator %s): %d local / %d global devices",
        pid, num, coordinator, jax.local_device_count(), jax.device_count(),
    )  # fmt: skip
    return True


def first_row() -> int:
    """Index of this process's first device among the global devices (rows of per-device data)."""
    ids = [d.id for d in jax.devices()]
    rows = sorted(ids.index(d.id) for d in jax.local_devices())
    if rows != list(range(rows[0], rows[0] + len(rows))):
        raise RuntimeError(f"this process's devices are not contiguous in jax.devices(): {rows}")
    return rows[0]


def is_leader() -> bool:
    """Process 0 writes checkpoints and publishes; the others only compute."""
    return jax.process_index() == 0
