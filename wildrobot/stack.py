"""`wildrobot up`: the local stack in one command (private Redis, the server, one worker).

Redis keeps its data (AOF on) in <dir>/redis, checkpoints go to <dir>/artifacts, compiled XLA
programs to <dir>/jax_cache, and the local token in <dir>/token (created once, mode 0600). Each
child runs in its own session, so Ctrl-C reaches only this launcher, which stops them in order:
the worker first (it checkpoints and re-queues its job), then the server, then Redis.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

LOCAL_TENANT = "local"
WORKER_STOP_S = 120.0  # a worker finishes its iteration and checkpoints before it exits


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout_s:.0f} s")


def local_token(data_dir: Path) -> str:
    path = data_dir / "token"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(24) + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


class Stack:
    def __init__(
        self, data_dir: Path, port: int, redis_port: int, host: str, http_port: int = 8080
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.http_port = http_port
        self.redis_port = redis_port or free_port()
        self.host = host
        self.procs: list[tuple[str, subprocess.Popen]] = []

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = (self.data_dir / "logs" / f"{name}.log").open("ab")
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs.append((name, proc))
        return proc

    def start(self, token: str) -> None:
        redis_dir = self.data_dir / "redis"
        for sub in (redis_dir, self.data_dir / "logs", self.data_dir / "artifacts"):
            sub.mkdir(parents=True, exist_ok=True)
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not on PATH (scripts/setup installs it)")
        redis = self._spawn(
            "redis",
            [binary, "--port", str(self.redis_port), "--bind", "127.0.0.1", "--dir", str(redis_dir),
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
             "--protected-mode", "yes"],
        )  # fmt: skip
        wait_for_port(self.redis_port, redis, 20, "redis-server")
        server = self._spawn(
            "server",
            [sys.executable, "-m", "wildrobot.server.main", "--host", self.host,
             "--port", str(self.port), "--redis-url", self.redis_url,
             "--tokens", f"{token}:{LOCAL_TENANT}", "--http-port", str(self.http_port),
             "--artifact-dir", str(self.data_dir / "artifacts")],
        )  # fmt: skip
        wait_for_port(self.port, server, 60, "wildrobot-server")
        wait_for_port(self.http_port, server, 30, "the dashboard (wildrobot-server)")
        self._spawn(
            "worker",
            [sys.executable, "-m", "wildrobot.workers.main", "--redis-url", self.redis_url,
             "--artifact-dir", str(self.data_dir / "artifacts"),
             "--jax-cache-dir", str(self.data_dir / "jax_cache")],
        )  # fmt: skip

    def first_exit(self) -> tuple[str, int] | None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                return name, proc.returncode
        return None

    def stop(self) -> None:
        """Worker, then server, then Redis: each gets SIGTERM and time to finish."""
        timeouts = {"worker": WORKER_STOP_S, "server": 30.0, "redis": 30.0}
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeouts.get(name, 30.0))
                except subprocess.TimeoutExpired:
                    print(f"wildrobot up: {name} did not stop; killing it", file=sys.stderr)
                    proc.kill()
                    proc.wait()


def up(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="wildrobot up", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dir", type=Path, default=Path(os.environ.get("WILDROBOT_HOME", ".wildrobot"))
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50051, help="gRPC port (0: a free one)")
    parser.add_argument("--redis-port", type=int, default=0, help="0: a free one")
    parser.add_argument(
        "--http-port", type=int, default=8080, help="the dashboard's port (0: a free one)"
    )
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    port = args.port or free_port()
    stack = Stack(args.dir, port, args.redis_port, args.host, args.http_port or free_port())
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    token = local_token(stack.data_dir)
    try:
        stack.start(token)
    except RuntimeError as exc:
        print(f"wildrobot up: {exc} (logs in {stack.data_dir / 'logs'})", file=sys.stderr)
        stack.stop()
        return 1
    print(
        f"WildRobot Train is up: server {args.host}:{port}, redis {stack.redis_url}, "
        f"data in {stack.data_dir}\n"
        f"  dashboard: http://{args.host}:{stack.http_port}/  (sign in with the token below)\n"
        f"  export WILDROBOT_ADDRESS={args.host}:{port}\n"
        f"  export WILDROBOT_TOKEN={token}\n"
        f"  logs: {stack.data_dir / 'logs'}   Ctrl-C stops everything",
        flush=True,
    )
    code = 0
    while not stopping:
        exited = stack.first_exit()
        if exited is not None:
            print(
                f"wildrobot up: {exited[0]} exited with code {exited[1]}; stopping", file=sys.stderr
            )
            code = 1
            break
        time.sleep(0.2)
    print("wildrobot up: stopping worker, server, redis", flush=True)
    stack.stop()
    return code
