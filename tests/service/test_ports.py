"""`wildrobot-server` checks both of its ports before serving: a taken one is a clear message
and exit status 2 (not a gRPC port that answers, then resets); `--http-port 0` picks a free
port and says which."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def taken_port() -> Iterator[int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def server_args(redis_url: str, tmp_path: Path, *flags: str) -> list[str]:
    return [
        sys.executable, "-m", "wildrobot.server.main",
        "--redis-url", redis_url, "--artifact-dir", str(tmp_path / "artifacts"),
        "--dynamics-warm-buckets", "", *flags,
    ]  # fmt: skip


def run_main(monkeypatch, capsys, redis_url: str, tmp_path: Path, *flags: str) -> tuple[int, str]:
    """`wildrobot-server`'s main() in this process (its imports are loaded already): exit status
    and stderr. The test keeps its own logging setup."""
    from wildrobot.server import main

    monkeypatch.setattr(main, "configure_logging", lambda log_format: None)
    status = main.main(server_args(redis_url, tmp_path, *flags)[3:])
    captured = capsys.readouterr()
    assert "listening on" not in captured.out  # gRPC never served
    return status, captured.err


def test_a_taken_dashboard_port_stops_the_start_with_a_message(
    monkeypatch, capsys, redis_url, tmp_path
) -> None:
    with taken_port() as port:
        status, err = run_main(
            monkeypatch, capsys, redis_url, tmp_path, "--port", "0", "--http-port", str(port)
        )
    assert status == 2, err
    assert f"dashboard: cannot listen on 127.0.0.1:{port}" in err
    assert "--http-port" in err


def test_a_taken_grpc_port_stops_the_start_with_a_message(
    monkeypatch, capsys, redis_url, tmp_path
) -> None:
    with taken_port() as port:
        status, err = run_main(
            monkeypatch, capsys, redis_url, tmp_path, "--port", str(port), "--http-port", "0"
        )
    assert status == 2, err
    assert f"gRPC: cannot listen on 127.0.0.1:{port}" in err
    assert "--port" in err


def test_http_port_zero_picks_a_free_port_and_reports_it(redis_url, tmp_path) -> None:
    args = server_args(redis_url, tmp_path, "--port", "0", "--http-port", "0")
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        url = None
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, f"server exited: {proc.stderr.read() if proc.stderr else ''}"
            if line.startswith("dashboard on "):
                url = line.split()[-1]
        assert url is not None and url.startswith("http://127.0.0.1:")
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        assert port != 0
        with urllib.request.urlopen(url, timeout=10) as reply:  # noqa: S310
            assert reply.status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
