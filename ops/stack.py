"""`wildrobot up`: the local stack in one command (private Redis, the server, N workers).

Redis keeps its data (AOF on) in <dir>/redis, checkpoints go to <dir>/artifacts, compiled XLA
programs to <dir>/jax_cache, and the local token in <dir>/token (created once, mode 0600 before
any byte is written). The server reads its `token:tenant` list from <dir>/tokens (same mode),
never from its command line, so `ps` shows no secret. Redis asks for a password, generated once
into <dir>/redis-password (0600); redis-server reads it from <dir>/redis.conf (0600), the server
and workers from WILDROBOT_REDIS_URL in their environment (which only their user can read), so
no command line holds it. Redis refuses writes beyond `--redis-maxmemory` (noeviction) instead of
growing until the machine kills it. Every child runs under umask 077: the data, logs and
artifacts it writes are 0700 directories and 0600 files. Each child runs in its own session, so
Ctrl-C reaches only this launcher, which stops them in order: the workers first (each
checkpoints and re-queues its job), then the server, then Redis.

A worker that dies (crash, OOM kill, SIGKILL) is restarted with exponential backoff and the
restart is logged; the server and Redis stay up and the dead worker's job comes back through its
lease, as on a cluster. The server or Redis dying stops the whole stack.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

LOCAL_TENANT = "local"
WORKER_STOP_S = 120.0  # a worker finishes its iteration and checkpoints before it exits
RESTART_BACKOFF_S = (1.0, 60.0)  # first delay, cap; doubles per crash in a row
STABLE_AFTER_S = 120.0  # a worker up this long resets its backoff


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


def redis_argv(
    binary: str, port: int, data_dir: Path, appendfsync: str, config: Path | None = None
) -> list[str]:
    """redis-server on loopback `port`, AOF on (`appendfsync` always|everysec), no RDB snapshots;
    `config` (a file) comes first, so secrets such as `requirepass` stay off the command line."""
    head = [binary] if config is None else [binary, str(config)]
    return [*head, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir),
            "--appendonly", "yes", "--appendfsync", appendfsync, "--save", "",
            "--protected-mode", "yes"]  # fmt: skip


PRIVATE_UMASK = 0o077  # children create 0700 directories and 0600 files
MIN_REDIS_MAXMEMORY = 16 << 20
# Redis's own memory units: k/m/g are powers of 1000, kb/mb/gb powers of 1024.
UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 1 << 10,
    "m": 10**6,
    "mb": 1 << 20,
    "g": 10**9,
    "gb": 1 << 30,
}


def memory_limit() -> int:
    """Bytes this process may use: the smaller of the machine's memory and its cgroup's limit."""
    limits = []
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                limits.append(int(line.split()[1]) * 1024)
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        with contextlib.suppress(OSError, ValueError):
            limits.append(int(Path(path).read_text().strip()))  # "max": no limit (ValueError)
    if not limits:
        raise RuntimeError("cannot tell how much memory this machine has: set --redis-maxmemory")
    return min(limits)


def parse_memory(text: str, limit: int) -> int:
    """`--redis-maxmemory` in Redis's units (512mb, 2gb, bytes), at least 16mb and below `limit`."""
    match = re.fullmatch(r"\s*(\d+)\s*([kmg]?b?)\s*", text.lower())
    if match is None:
        raise ValueError(f"--redis-maxmemory: {text!r} is not a size like 512mb or 2gb")
    value = int(match.group(1)) * UNITS[match.group(2)]
    if not MIN_REDIS_MAXMEMORY <= value < limit:
        raise ValueError(
            f"--redis-maxmemory must be at least {MIN_REDIS_MAXMEMORY >> 20}mb and below the "
            f"{limit >> 20}mb this machine allows; got {value >> 20}mb"
        )
    return value


def default_redis_maxmemory(limit: int) -> int:
    """A quarter of what the machine (or container) allows: the workers need the rest."""
    return max(MIN_REDIS_MAXMEMORY, limit // 4)


def redis_config(password: str, maxmemory: int) -> str:
    return f"requirepass {password}\nmaxmemory {maxmemory}\nmaxmemory-policy noeviction\n"


class RedisServer:
    """A private redis-server (AOF, fsync on every write) on a free loopback port; restartable on
    the same port and data, for tests and the chaos bench."""

    def __init__(self, data_dir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not on PATH: run scripts/setup")
        self.binary = binary
        self.data_dir = data_dir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 20.0) -> None:
        """Starts it and returns once it answers PING."""
        argv = redis_argv(self.binary, self.port, self.data_dir, "always")
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with code {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


def write_private(path: Path, text: str) -> None:
    """Creates `path` with mode 0600 (whatever the umask) and only then writes `text` into it."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the umask can only remove bits; make the mode exact anyway
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def local_secret(path: Path) -> str:
    """The secret in `path`, created once (mode 0600) with 24 random URL-safe bytes."""
    if not path.exists():
        write_private(path, secrets.token_urlsafe(24) + "\n")
    return path.read_text().strip()


def local_token(data_dir: Path) -> str:
    return local_secret(data_dir / "token")


def redis_password(data_dir: Path) -> str:
    return local_secret(data_dir / "redis-password")


def make_private_dirs(*paths: Path) -> None:
    """Creates each directory (and parents) as 0700, and tightens an existing one to 0700."""
    for path in paths:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.chmod(0o700)


def worker_env(index: int, workers: int, environ: dict[str, str]) -> dict[str, str] | None:
    """Worker `index` (1-based) of `workers` sees one GPU, index - 1 (JAX pre-allocates 75% of
    every GPU it sees). None: inherit the environment (one worker, or CUDA_VISIBLE_DEVICES set)."""
    if workers == 1 or "CUDA_VISIBLE_DEVICES" in environ:
        return None
    return dict(environ, CUDA_VISIBLE_DEVICES=str(index - 1))


def restart_delay(crashes_in_a_row: int) -> float:
    first, cap = RESTART_BACKOFF_S
    return min(cap, first * 2 ** max(0, crashes_in_a_row - 1))


@dataclass
class Child:
    name: str
    args: list[str]
    proc: subprocess.Popen
    started: float
    env: dict[str, str] | None = None
    crashes: int = 0  # in a row (reset once it has run STABLE_AFTER_S)
    restart_at: float | None = None  # set while a dead worker waits out its backoff


class Stack:
    def __init__(
        self,
        data_dir: Path,
        port: int,
        redis_port: int,
        host: str,
        workers: int = 1,
        log_format: str = "text",
        http_port: int = 8080,
        redis_maxmemory: int = 1 << 30,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.http_port = http_port
        self.redis_port = redis_port or free_port()
        self.host = host
        self.workers = workers
        self.log_format = log_format
        self.redis_maxmemory = redis_maxmemory
        self.children: list[Child] = []

    @property
    def redis_url(self) -> str:
        """Without the password: for messages."""
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def redis_env(self) -> dict[str, str]:
        """The environment of the server and workers: the Redis URL with its password, which
        only their own user can read (/proc/<pid>/environ is 0400), unlike their command line."""
        password = redis_password(self.data_dir)
        url = f"redis://:{password}@127.0.0.1:{self.redis_port}/0"
        return dict(os.environ, WILDROBOT_REDIS_URL=url)

    def _popen(
        self, name: str, args: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen:
        path = self.data_dir / "logs" / f"{name}.log"
        log = os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
        try:
            return subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
                umask=PRIVATE_UMASK,
            )
        finally:
            log.close()

    def _spawn(
        self, name: str, args: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen:
        proc = self._popen(name, args, env)
        self.children.append(Child(name, args, proc, time.monotonic(), env))
        say(f"{name} started (pid {proc.pid})")
        return proc

    def start(self, token: str) -> None:
        redis_dir = self.data_dir / "redis"
        make_private_dirs(
            self.data_dir,
            redis_dir,
            self.data_dir / "logs",
            self.data_dir / "artifacts",
            self.data_dir / "jax_cache",
        )
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not on PATH (scripts/setup installs it)")
        config = self.data_dir / "redis.conf"
        write_private(config, redis_config(redis_password(self.data_dir), self.redis_maxmemory))
        redis = self._spawn(
            "redis",
            redis_argv(binary, self.redis_port, redis_dir, "everysec", config),
        )
        wait_for_port(self.redis_port, redis, 20, "redis-server")
        tokens_file = self.data_dir / "tokens"
        write_private(tokens_file, f"{token}:{LOCAL_TENANT}\n")
        server = self._spawn(
            "server",
            [sys.executable, "-m", "wildrobot.server.main", "--host", self.host,
             "--port", str(self.port),
             "--tokens-file", str(tokens_file), "--log-format", self.log_format,
             "--http-port", str(self.http_port),
             "--artifact-dir", str(self.data_dir / "artifacts")],
            self.redis_env(),
        )  # fmt: skip
        wait_for_port(self.port, server, 60, "wildrobot-server")
        wait_for_port(self.http_port, server, 30, "the dashboard (wildrobot-server)")
        env = self.redis_env()
        for index in range(1, self.workers + 1):
            self._spawn(
                f"worker-{index}",
                [sys.executable, "-m", "wildrobot.workers.main",
                 "--worker-id", f"{socket.gethostname()}-up-worker-{index}",
                 "--log-format", self.log_format,
                 "--artifact-dir", str(self.data_dir / "artifacts"),
                 "--jax-cache-dir", str(self.data_dir / "jax_cache")],
                worker_env(index, self.workers, env) or env,
            )  # fmt: skip

    def check(self) -> tuple[str, int] | None:
        """Restarts dead workers (after their backoff); returns (name, code) of a dead server/Redis."""
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.proc = self._popen(child.name, child.args, child.env)
                    child.started, child.restart_at = now, None
                    say(f"{child.name} restarted (pid {child.proc.pid})")
                continue
            code = child.proc.poll()
            if code is None:
                continue
            if not child.name.startswith("worker"):
                return child.name, code
            # Its runner (same session) may outlive it: it is fenced anyway; end it now.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.proc.pid, signal.SIGKILL)
            child.crashes = 1 if now - child.started > STABLE_AFTER_S else child.crashes + 1
            delay = restart_delay(child.crashes)
            child.restart_at = now + delay
            say(
                f"{child.name} (pid {child.proc.pid}) exited with code {code}; "
                f"restarting in {delay:.0f} s (crash {child.crashes} in a row); "
                "its job returns through the lease",
                err=True,
            )
        return None

    def stop(self) -> None:
        """Workers, then server, then Redis: each gets SIGTERM and time to finish."""
        for group in ("worker", "server", "redis"):
            members = [c for c in self.children if c.name.startswith(group)]
            for child in members:
                if child.restart_at is None and child.proc.poll() is None:
                    child.proc.send_signal(signal.SIGTERM)
            timeout = WORKER_STOP_S if group == "worker" else 30.0
            for child in members:
                if child.restart_at is not None:
                    continue
                try:
                    child.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    say(f"{child.name} did not stop; killing it", err=True)
                    child.proc.kill()
                    child.proc.wait()


def say(message: str, err: bool = False) -> None:
    print(f"wildrobot up: {message}", file=sys.stderr if err else sys.stdout, flush=True)


def up(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="wildrobot up", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dir", type=Path, default=Path(os.environ.get("WILDROBOT_HOME", ".wildrobot"))
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50051, help="gRPC port (0: a free one)")
    parser.add_argument("--redis-port", type=int, default=0, help="0: a free one")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes; with more than one, worker i sees only GPU i-1 "
        "(unless CUDA_VISIBLE_DEVICES is set)",
    )
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    parser.add_argument(
        "--http-port", type=int, default=8080, help="the dashboard's port (0: a free one)"
    )
    parser.add_argument(
        "--redis-maxmemory",
        help="Redis refuses new writes (noeviction) beyond this, e.g. 512mb or 2gb; "
        "default: a quarter of the memory this machine or container allows",
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    limit = memory_limit()
    try:
        maxmemory = (
            default_redis_maxmemory(limit)
            if args.redis_maxmemory is None
            else parse_memory(args.redis_maxmemory, limit)
        )
    except ValueError as exc:
        parser.error(str(exc))
    os.umask(PRIVATE_UMASK)
    make_private_dirs(args.dir)
    port = args.port or free_port()
    stack = Stack(
        args.dir,
        port,
        args.redis_port,
        args.host,
        args.workers,
        args.log_format,
        args.http_port or free_port(),
        maxmemory,
    )
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
        say(f"{exc} (logs in {stack.data_dir / 'logs'})", err=True)
        stack.stop()
        return 1
    print(
        f"WildRobot Train is up: server {args.host}:{port}, redis {stack.redis_url} "
        f"(password in {stack.data_dir / 'redis-password'}, maxmemory {maxmemory >> 20}mb), "
        f"{args.workers} worker(s), data in {stack.data_dir}\n"
        f"  dashboard: http://{args.host}:{stack.http_port}/  (sign in with the token below)\n"
        f"  export WILDROBOT_ADDRESS={args.host}:{port}\n"
        f"  export WILDROBOT_TOKEN={token}\n"
        f"  logs: {stack.data_dir / 'logs'}   Ctrl-C stops everything",
        flush=True,
    )
    code = 0
    while not stopping:
        dead = stack.check()
        if dead is not None:
            say(f"{dead[0]} exited with code {dead[1]}; stopping", err=True)
            code = 1
            break
        time.sleep(0.2)
    say("stopping workers, server, redis")
    stack.stop()
    return code
