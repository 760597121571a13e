"""`wildrobot up`: the local stack comes up, serves a job, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
import redis

from tests.dashboard.http_client import call
from tests.live_service import AuthedStub
from wildrobot.ops import stack
from wildrobot.v1 import jobs_pb2

from .tiny_jobs import state_is, submit, tiny_ppo, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.integration, pytest.mark.slow]


def test_up_runs_a_job_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wildrobot.ops.cli",
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
    assert (tmp_path / "stack" / "artifacts" / job.job_id / "attempt-1" / "checkpoints").is_dir()
    assert_private_tree(tmp_path / "stack")


def assert_private_tree(root: Path) -> None:
    """Nothing under the stack's directory is readable by another user: directories 0700,
    files 0600 (Redis's AOF, checkpoints, logs, the compile cache, secrets)."""
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    seen = {"dirs": 0, "files": 0}
    for path in root.rglob("*"):
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_dir():
            seen["dirs"] += 1
            assert mode == 0o700, f"{path} is {mode:o}"
        elif path.is_file():
            seen["files"] += 1
            assert mode == 0o600, f"{path} is {mode:o}"
    assert seen["dirs"] >= 5 and seen["files"] >= 5, seen  # redis, logs, artifacts, ...


class Launcher:
    """`wildrobot up` in a subprocess; a thread collects its output lines."""

    def __init__(self, data_dir: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        if "--http-port" not in extra:  # never the default 8080: another stack may hold it
            extra = (*extra, "--http-port", "0")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wildrobot.ops.cli", "up", "--dir", str(data_dir), "--port", "0",
             *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ, JAX_PLATFORMS="cpu", **(env or {})),
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    def close(self) -> None:
        """Stops the stack even when the test failed: SIGTERM first (the launcher stops its
        children in order), then SIGKILL for the launcher and everything below it (its children
        run in their own sessions and would outlive a killed launcher)."""
        if self.proc.poll() is not None:
            return
        below = descendants(self.proc.pid)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(150)
            return
        except subprocess.TimeoutExpired:
            pass
        for pid in [self.proc.pid, *below]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait()

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 120) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.text)
            if match:
                return match
            assert self.proc.poll() is None, self.text
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} in:\n{self.text}")


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (from /proc's parent links)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def assert_no_secret_in_argv(pids: list[int], *secrets: str) -> None:
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            for secret in secrets:
                assert secret not in argv, f"pid {pid} shows a secret: {argv!r}"


def test_up_survives_a_worker_sigkill_and_keeps_tokens_off_argv(tmp_path: Path) -> None:
    """With two workers, SIGKILL the one running a job: the launcher restarts it (logged), the
    server and Redis stay up, and the job ends SUCCEEDED on attempt 2 through the lease. No process's argv holds the
    token, and both secret files are mode 0600."""
    data_dir = tmp_path / "stack"
    short_lease = {
        "WILDROBOT_LEASE_S": "10",  # the killed worker's job returns within ~10 s
        "WILDROBOT_HEARTBEAT_S": "1",
        "WILDROBOT_POLL_MS": "200",
        "WILDROBOT_REAPER_INTERVAL_S": "0.5",
        "PYTHONUNBUFFERED": "1",
    }
    up = Launcher(data_dir, "--workers", "2", env=short_lease)
    try:
        address = up.wait_for(r"WILDROBOT_ADDRESS=(\S+)").group(1)
        token = up.wait_for(r"WILDROBOT_TOKEN=(\S+)").group(1)
        workers = [int(up.wait_for(rf"worker-{i} started \(pid (\d+)\)").group(1)) for i in (1, 2)]
        server_pid = int(up.wait_for(r"server started \(pid (\d+)\)").group(1))
        redis_pid = int(up.wait_for(r"redis started \(pid (\d+)\)").group(1))
        for name in ("token", "tokens", "redis-password", "redis.conf"):
            assert (data_dir / name).stat().st_mode & 0o777 == 0o600, name
        password = (data_dir / "redis-password").read_text().strip()
        assert len(password) >= 24
        pids = descendants(up.proc.pid)
        assert {*workers, server_pid, redis_pid} <= set(pids)
        assert_no_secret_in_argv([up.proc.pid, *pids], token, password)
        redis_url = up.wait_for(r"redis (redis://\S+)").group(1)
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis.from_url(redis_url).ping()  # no password: refused
        with redis.Redis.from_url(redis_url, password=password, decode_responses=True) as r:
            config = r.config_get("maxmemory*")
            assert 0 < int(config["maxmemory"]) < stack.memory_limit()
            assert config["maxmemory-policy"] == "noeviction"

        with grpc.insecure_channel(address) as channel:
            stub = AuthedStub(channel, token)
            job = submit(stub, tiny_ppo(30, checkpoint_every=5))
            wait_for(stub, job.job_id, lambda j: j.progress.steps_done > 0, timeout=240)
            # The job's runner process exists now: it too gets the URL without the password in argv.
            assert_no_secret_in_argv(descendants(up.proc.pid), token, password)
            running = Path(data_dir / "logs").glob("worker-*.log")
            name = next(p.stem for p in running if job.job_id in p.read_text())
            worker_pid = workers[int(name[-1]) - 1]
            os.kill(worker_pid, signal.SIGKILL)  # the worker running the job, not its runner
            up.wait_for(rf"{name} \(pid {worker_pid}\) exited with code -9; restarting")
            new_pid = int(up.wait_for(rf"{name} restarted \(pid (\d+)\)").group(1))
            assert new_pid != worker_pid
            done = wait_for(
                stub,
                job.job_id,
                state_is(jobs_pb2.JOB_STATE_SUCCEEDED, jobs_pb2.JOB_STATE_FAILED),
                timeout=300,
            )
            assert done.state == jobs_pb2.JOB_STATE_SUCCEEDED, done
            assert done.attempt == 2
            assert done.progress.steps_done == done.progress.steps_total
        for pid in (server_pid, redis_pid):  # never restarted: the same processes served it all
            os.kill(pid, 0)
        assert up.text.count("server started") == 1
        up.proc.send_signal(signal.SIGINT)
        assert up.proc.wait(120) == 0, up.text
    finally:
        up.close()
