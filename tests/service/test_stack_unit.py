"""`wildrobot up` pieces that need no processes: private files and the restart backoff."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
from pathlib import Path

import pytest
import redis

from wildrobot.ops import stack


def test_secret_files_are_0600_before_the_first_byte(tmp_path: Path, monkeypatch) -> None:
    modes: list[int] = []
    real_write = os.write

    def spying_write(fd: int, data: bytes) -> int:
        modes.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return real_write(fd, data)

    monkeypatch.setattr(stack.os, "write", spying_write)
    old_umask = os.umask(0)  # the most permissive umask: the mode must not depend on it
    try:
        token = stack.local_token(tmp_path)
        stack.write_private(tmp_path / "tokens", f"{token}:local\n")
    finally:
        os.umask(old_umask)
    assert modes == [0o600, 0o600]
    for name in ("token", "tokens"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    assert stack.local_token(tmp_path) == token  # created once, then reused


def test_restart_backoff_doubles_up_to_its_cap() -> None:
    delays = [stack.restart_delay(n) for n in range(1, 10)]
    assert delays[:3] == [1.0, 2.0, 4.0]
    assert max(delays) == stack.RESTART_BACKOFF_S[1]
    assert delays == sorted(delays)


@pytest.mark.parametrize("workers", ["0", "-1"])
def test_up_refuses_fewer_than_one_worker(workers: str, tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        stack.up(["--dir", str(tmp_path), "--workers", workers])


def test_each_of_several_workers_sees_its_own_gpu() -> None:
    assert stack.worker_env(1, 1, {"A": "1"}) is None  # one worker: everything it inherits
    assert stack.worker_env(2, 3, {"A": "1"}) == {"A": "1", "CUDA_VISIBLE_DEVICES": "1"}
    assert stack.worker_env(2, 3, {"CUDA_VISIBLE_DEVICES": "4,5"}) is None  # the user decides


def test_redis_maxmemory_takes_redis_units_and_stays_below_the_machine() -> None:
    limit = 8 << 30
    assert stack.parse_memory("512mb", limit) == 512 << 20
    assert stack.parse_memory("2gb", limit) == 2 << 30
    assert stack.parse_memory("100m", limit) == 100_000_000
    assert stack.parse_memory(str(64 << 20), limit) == 64 << 20
    for bad, words in [
        ("8gb", "below the 8192mb"),
        ("1mb", "at least 16mb"),
        ("lots", "not a size"),
        ("-5mb", "not a size"),
    ]:
        with pytest.raises(ValueError, match="--redis-maxmemory") as caught:
            stack.parse_memory(bad, limit)
        assert words in str(caught.value)
    assert stack.default_redis_maxmemory(limit) == 2 << 30
    assert 0 < stack.default_redis_maxmemory(stack.memory_limit()) < stack.memory_limit()


def test_up_refuses_a_redis_maxmemory_beyond_the_machine(tmp_path: Path, capsys) -> None:
    too_much = f"{stack.memory_limit() // (1 << 20) + 1}mb"
    with pytest.raises(SystemExit):
        stack.up(["--dir", str(tmp_path), "--redis-maxmemory", too_much])
    assert "--redis-maxmemory must be at least 16mb and below" in capsys.readouterr().err


@pytest.mark.redis
def test_redis_config_file_sets_the_password_and_a_bounded_noeviction(tmp_path: Path) -> None:
    """redis-server reads `requirepass` from the 0600 config file, not from its command line."""
    config = tmp_path / "redis.conf"
    stack.write_private(config, stack.redis_config("s3cret-pass", 16 << 20))
    port = stack.free_port()
    argv = stack.redis_argv(shutil.which("redis-server"), port, tmp_path, "everysec", config)
    assert not any("s3cret-pass" in arg for arg in argv)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    try:
        stack.wait_for_port(port, proc, 20, "redis-server")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"PING\r\n")  # no password: refused (raw RESP, no client retries)
            assert sock.recv(64).startswith(b"-NOAUTH")
        with redis.Redis(port=port, password="s3cret-pass", decode_responses=True) as client:
            assert client.config_get("maxmemory")["maxmemory"] == str(16 << 20)
            assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
            with pytest.raises(redis.exceptions.OutOfMemoryError):
                for i in range(100):
                    client.set(f"big-{i}", "y" * (1 << 20))
    finally:
        proc.terminate()
        proc.wait(10)


def test_make_private_dirs_tightens_existing_directories(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir(mode=0o755)
    (tmp_path / "old").chmod(0o755)
    stack.make_private_dirs(tmp_path / "old", tmp_path / "new" / "deep")
    for path in (tmp_path / "old", tmp_path / "new" / "deep"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
