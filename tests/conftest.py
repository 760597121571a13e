"""Shared fixtures: a real redis-server on a free loopback port, and JAX's compilation cache."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from wildrobot.stack import RedisServer, free_port  # noqa: F401 - tests import them from here

REPO_ROOT = Path(__file__).resolve().parent.parent
# Compiled XLA programs are reused across test processes and runs (worker subprocesses too).
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(REPO_ROOT / ".jax_cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "1")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def trained_stand(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config):
    """PPO's stand policy, trained once per session (tests/trained_stand.py; minutes of CPU)."""
    from tests.trained_stand import train_stand

    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():  # the curve goes to CI's log, passing or not
        return train_stand(tmp_path_factory.mktemp("trained_stand"))


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """A flushed database on the session's Redis for each test."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    yield redis_server.url
