"""What every host of one multi-host attempt gets, and what a launcher of hosts looks like."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..handlers import JobError

COORDINATOR_PORT = 8476
EXIT_STOPPED = 3  # wildrobot.workers.host: stopped early after a checkpoint
EXIT_LEASE_LOST = 4
STOP_GRACE_S = 600.0


class LaunchFailed(JobError):
    """The hosts could not be placed or started (too many for this launcher, not scheduled in
    time, their Job gone): the attempt fails with this as its reason."""


@dataclass(frozen=True)
class LaunchPlan:
    """What every host of one attempt gets."""

    job_id: str
    attempt: int
    num_hosts: int
    spec_file: Path  # on storage every host sees (the artifacts volume)
    run_dir: Path
    resume_from: Path | None
    redis_url: str
    launched_by: str
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """DNS-1123 name of the attempt's Job and Service: wr-<job id>-a<attempt>."""
        short = re.sub(r"[^a-z0-9]", "", self.job_id.lower())[:40]
        return f"wr-{short}-a{self.attempt}"

    def host_args(self) -> list[str]:
        args = ["--spec-file", str(self.spec_file), "--run-dir", str(self.run_dir)]
        if self.resume_from is not None:
            args += ["--resume-from", str(self.resume_from)]
        return args

    def host_env(self, coordinator: str) -> dict[str, str]:
        return {
            "WILDROBOT_COORDINATOR": coordinator,
            "WILDROBOT_NUM_PROCESSES": str(self.num_hosts),
            "WILDROBOT_REDIS_URL": self.redis_url,
            "WILDROBOT_JOB_ID": self.job_id,
            "WILDROBOT_ATTEMPT": str(self.attempt),
            "WILDROBOT_LAUNCHED_BY": self.launched_by,
            **self.extra_env,
        }


class HostGroup(Protocol):
    def poll(self) -> int | None:
        """None while running; else 0 (finished), EXIT_STOPPED, or another code (failed).
        Raises LaunchFailed when the hosts cannot run at all (e.g. never scheduled)."""

    def stop(self) -> None:
        """Ask for a checkpoint and an orderly end (SIGTERM to the hosts)."""

    def kill(self) -> None:
        """End every host now."""


class HostLauncher(Protocol):
    def start(self, plan: LaunchPlan) -> HostGroup: ...
