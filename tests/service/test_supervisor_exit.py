"""The supervisor keeps renewing the lease while a runner that has reported its outcome exits.

Found with a WildRobot job end to end: tearing down the runner (large compiled MJX programs)
outlasted the tests' 3 s lease, so the reaper re-queued a job that had succeeded and its final
state was refused as stale, three attempts in a row.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from types import SimpleNamespace

from wildrobot.workers.config import WorkerConfig
from wildrobot.workers.supervisor import Supervisor


def test_lease_is_renewed_while_a_reported_runner_exits() -> None:
    supervisor = Supervisor(
        WorkerConfig(redis_url="redis://127.0.0.1:9/0", lease_s=1.0, heartbeat_s=0.2)
    )
    renewals: list[float] = []
    supervisor.queue = SimpleNamespace(  # type: ignore[assignment]
        renew=lambda lease, lease_s: renewals.append(lease_s) or "RUNNING"
    )
    slow_exit = mp.get_context("spawn").Process(target=time.sleep, args=(2.0,))
    slow_exit.start()
    start = time.monotonic()
    supervisor._join_renewing(slow_exit, lease=None)
    assert not slow_exit.is_alive() and time.monotonic() - start < 10
    assert len(renewals) >= 4 and set(renewals) == {1.0}  # every 0.2 s across the 2 s exit
