"""`wildrobot up` pieces that need no processes: private files and the restart backoff."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from wildrobot import stack


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
