"""Reusable fixtures for tests that need the real service: a front end on port 0 (in a thread
with its own event loop) over the session's real Redis, and real `wildrobot-worker` processes.

Use from any test folder:

    from tests.live_service import *  # noqa: F403  (fixtures: service, worker_factory)

    def test_x(service, worker_factory):
        stub = service.stub("alice")            # JobService stub with alice's bearer token
        worker = worker_factory()               # a real worker subprocess; stopped at teardown
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from wildrobot.server.app import WildRobotServer, create_server
from wildrobot.server.config import ServerConfig
from wildrobot.v1 import jobs_pb2_grpc

TOKENS = {"alice-token": "alice", "bob-token": "bob"}
TOKEN_OF = {tenant: token for token, tenant in TOKENS.items()}
# Short lease settings keep chaos tests fast; the worker gets matching flags.
TEST_LEASE_S = 3.0
TEST_HEARTBEAT_S = 0.5


class ServerThread:
    """The real front end running in a background thread (its own asyncio loop)."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server: WildRobotServer | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="wildrobot-server", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._server, self.port = self._loop.run_until_complete(create_server(self.config))
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> ServerThread:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def server(self) -> WildRobotServer:
        assert self._server is not None
        return self._server

    def call(self, coro: object, timeout: float = 30) -> object:
        """Runs a coroutine on the server's loop (e.g. a reaper pass) and returns its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self._server is not None:
            try:
                self.call(self._server.stop(0.5), timeout=20)
            finally:
                self._server = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@dataclass
class Service:
    """A running front end plus helpers to call it."""

    thread: ServerThread
    redis_url: str
    artifact_dir: Path
    channels: list[grpc.Channel] = field(default_factory=list)

    @property
    def address(self) -> str:
        return self.thread.address

    @property
    def http_url(self) -> str:
        """The dashboard's base URL (its HTTP server runs in the same front end, port 0)."""
        return f"http://127.0.0.1:{self.thread.server.http_port}"

    def channel(self, **options: int) -> grpc.Channel:
        channel = grpc.insecure_channel(self.address, options=list(options.items()))
        self.channels.append(channel)
        return channel

    def stub(self, tenant: str | None = "alice") -> AuthedStub:
        return AuthedStub(self.channel(), TOKEN_OF.get(tenant or "", "") if tenant else None)

    def close(self) -> None:
        for channel in self.channels:
            channel.close()


class AuthedStub:
    """A JobServiceStub whose calls carry `authorization: Bearer <token>` (none if token=None)."""

    def __init__(self, channel: grpc.Channel, token: str | None) -> None:
        self.raw = jobs_pb2_grpc.JobServiceStub(channel)
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()

    def __getattr__(self, name: str) -> object:
        method = getattr(self.raw, name)

        def call(request: object, **kwargs: object) -> object:
            kwargs.setdefault("metadata", self.metadata)
            kwargs.setdefault("timeout", 60)
            return method(request, **kwargs)

        return call


def server_config(redis_url: str, artifact_dir: Path, **overrides: object) -> ServerConfig:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": 0,
        "redis_url": redis_url,
        "tokens": TOKENS,
        "artifact_dir": artifact_dir,
        "reaper_interval_s": 0.5,
        "health_interval_s": 0.5,
        "orphan_after_s": 5.0,
        "grace_s": 0.5,
        "max_message_bytes": 256 * 1024,
        "chunk_bytes": 16 * 1024,
        "http_port": 0,
        "sse_keepalive_s": 1.0,
        "dynamics_warm_buckets": (),  # no background compiles in tests (test_rpc warms one)
    }
    values.update(overrides)
    return ServerConfig.model_validate(values)


@pytest.fixture
def service(redis_url: str, tmp_path: Path) -> Iterator[Service]:
    artifact_dir = tmp_path / "artifacts"
    artifact_dir.mkdir()
    thread = ServerThread(server_config(redis_url, artifact_dir)).start()
    svc = Service(thread, redis_url, artifact_dir)
    yield svc
    svc.close()
    thread.stop()


@dataclass
class WorkerProcess:
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, sig: int) -> None:
        """Signals the supervisor and (for SIGSTOP/SIGCONT/SIGKILL) its whole process group."""
        if sig in (signal.SIGSTOP, signal.SIGCONT, signal.SIGKILL):
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 60) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def start_worker(
    redis_url: str, artifact_dir: Path, log_path: Path, *extra: str, name: str = "w"
) -> WorkerProcess:
    """A real `wildrobot-worker` (own process group, so a chaos test can freeze or kill it all)."""
    args = [
        sys.executable,
        "-m",
        "wildrobot.workers.main",
        "--redis-url",
        redis_url,
        "--artifact-dir",
        str(artifact_dir),
        "--lease-s",
        str(TEST_LEASE_S),
        "--heartbeat-s",
        str(TEST_HEARTBEAT_S),
        "--poll-ms",
        "200",
        "--worker-id",
        name,
        *extra,
    ]
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1")
    log = log_path.open("wb")
    proc = subprocess.Popen(
        args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    log.close()
    return WorkerProcess(proc, log_path)


@pytest.fixture
def worker_factory(service: Service, tmp_path: Path) -> Iterator:
    """Call it to start a worker against `service`'s Redis and artifact dir; all stopped after."""
    workers: list[WorkerProcess] = []

    def start(*extra: str) -> WorkerProcess:
        index = len(workers)
        worker = start_worker(
            service.redis_url,
            service.artifact_dir,
            tmp_path / f"worker{index}.log",
            *extra,
            name=f"worker{index}",
        )
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
