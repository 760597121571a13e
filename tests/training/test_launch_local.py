"""The local launcher places at most its maximum of hosts (default the CPU count): more fail the
attempt before any process starts, with a reason naming num_hosts and the limit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wildrobot.workers import launch
from wildrobot.workers.launch.local import LocalHostLauncher
from wildrobot.workers.launch.plan import LaunchFailed, LaunchPlan


def plan(tmp_path: Path, num_hosts: int) -> LaunchPlan:
    return LaunchPlan(
        job_id="0192f3a4b5c6d7e8f9a0b1c2d3e4f5a6",
        attempt=1,
        num_hosts=num_hosts,
        spec_file=tmp_path / "spec.json",
        run_dir=tmp_path / "run",
        resume_from=None,
        redis_url="redis://127.0.0.1:1/0",
        launched_by="w",
    )


def test_more_hosts_than_the_launcher_places_fail_before_any_process(tmp_path: Path) -> None:
    with pytest.raises(LaunchFailed) as err:
        LocalHostLauncher(max_hosts=2).start(plan(tmp_path, 3))
    assert "num_hosts: 3 hosts" in str(err.value) and "at most 2" in str(err.value)
    assert "WILDROBOT_LOCAL_MAX_HOSTS" in str(err.value)
    assert not (tmp_path / "run").exists()  # no host log opened, no process started


def test_the_maximum_comes_from_the_environment_else_the_cpu_count() -> None:
    chosen = launch.launcher_from_env({"WILDROBOT_LOCAL_MAX_HOSTS": "3"})
    assert isinstance(chosen, LocalHostLauncher) and chosen.max_hosts == 3
    assert launch.launcher_from_env({}).max_hosts == os.cpu_count()
    with pytest.raises(ValueError, match="WILDROBOT_LOCAL_MAX_HOSTS"):
        launch.launcher_from_env({"WILDROBOT_LOCAL_MAX_HOSTS": "0"})
