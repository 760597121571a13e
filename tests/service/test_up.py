"""`wildrobot up`: the local stack comes up, serves a job, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from tests.dashboard.http_client import call
from tests.service_fixtures import AuthedStub
from wildrobot.v1 import jobs_pb2

from .helpers import state_is, submit, tiny_ppo, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.integration, pytest.mark.slow]


def test_up_runs_a_job_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wildrobot.cli",
            "up",
            "--dir",
            str(tmp_path / "stack"),
            "--port",
            "0",
            "--http-port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, JAX_PLATFORMS="cpu"),
    )
    try:
        lines = []
        while not any("WILDROBOT_TOKEN" in line for line in lines):
            line = proc.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        text = "".join(lines)
        address = re.search(r"WILDROBOT_ADDRESS=(\S+)", text).group(1)
        token = re.search(r"WILDROBOT_TOKEN=(\S+)", text).group(1)
        dashboard = re.search(r"dashboard: (http://\S+)/", text).group(1)
        assert call(dashboard, "/api/whoami", token).json() == {"tenant": "local"}
        with grpc.insecure_channel(address) as channel:
            stub = AuthedStub(channel, token)
            job = submit(stub, tiny_ppo(2))
            done = wait_for(stub, job.job_id, state_is(jobs_pb2.JOB_STATE_SUCCEEDED), timeout=240)
            assert done.tenant == "local"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert list((tmp_path / "stack" / "redis").rglob("*.aof*"))
    assert (tmp_path / "stack" / "artifacts" / job.job_id / "checkpoints").is_dir()
