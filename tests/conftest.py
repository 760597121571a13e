"""Shared fixtures: a real redis-server on a free loopback port, and JAX's compilation cache.

Test support modules (no `test_` prefix) are named for what they provide, as nouns:
live_service.py (a real front end and worker processes), trained_stand.py (the session's stand
policy), service/tiny_jobs.py, training/tiny_runs.py, dashboard/browser.py, deploy/kustomize.py;
never helpers.py, common.py or utils.py."""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wildrobot.ops.stack import RedisServer, free_port  # noqa: F401 - tests import them from here

REPO_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO_ROOT / ".test-artifacts"
# Compiled XLA programs are reused across test processes and runs (worker subprocesses too).
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(REPO_ROOT / ".jax_cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "1")
# XLA:CPU splits each program's LLVM code generation into parts compiled on a thread pool. With
# two test workers on two cores the parts only queue, and the split costs: one part compiled a
# 20-step WildRobot rollout in 33-38 s against 41-45 s (alternated, 3 runs each, 2026-12-08),
# with bit-identical results (the split changes how code is generated, not the arithmetic).
# Set before JAX starts; subprocesses (workers, benches) inherit it.
if "xla_cpu_parallel_codegen_split_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_cpu_parallel_codegen_split_count=1"
    ).strip()
# (Tried and withdrawn: LLVM optimization level 1 for tests, which compiled a 32-world walk
# rollout in 28 s instead of 37. Under it the session's stand policy ended its 200 iterations
# falling in 44% of the evaluation episodes (the statue 58%) and the stand learning test failed:
# the stand recipe's last iterate depends on float details, issue 29.)

# scripts/test runs the suite on two pytest-xdist workers. A work unit (what one worker runs, in
# one process) is a test module, except the modules that use the session's trained stand policy,
# which form one unit so it is trained once. Units go out in collection order, the longest first,
# so the other worker drains the rest. (xdist's own `--dist loadgroup` does not group under
# pytest 9: it renames `item._nodeid`, which pytest 9 no longer reads. Hence the scheduler below.)
STAND_GROUP = "trained_stand"
STAND_MODULES = (
    "tests/training/test_learning.py",
    "tests/tta/test_best_of_n.py",
    "tests/tta/test_sysid.py",
)
LONGEST_FIRST = (  # the units over ~3 worker-minutes in a clean-clone CI run, longest first
    STAND_GROUP,
    "tests/test_bench_smoke.py",  # eight bench smokes, each a subprocess: ~9 minutes
    "tests/tta/test_privilege.py",
    "tests/tta/test_rollout.py",
    "tests/dynamics/test_inverse.py",
    "tests/envs/test_episode_boundaries.py",
    "tests/envs/test_brax_training.py",
)


def work_unit(nodeid: str) -> str:
    module = nodeid.split("::")[0]
    return STAND_GROUP if module in STAND_MODULES else module


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    class WorkUnitScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    config.option.loadscopereorder = False  # keep the collection order below
    return WorkUnitScheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        uses_stand = "trained_stand" in getattr(item, "fixturenames", ())
        if uses_stand and work_unit(item.nodeid) != STAND_GROUP:
            raise pytest.UsageError(
                f"{item.nodeid} uses trained_stand: add its module to STAND_MODULES "
                "(tests/conftest.py) so the policy is trained once"
            )

    def rank(item: pytest.Item) -> int:
        unit = work_unit(item.nodeid)
        return LONGEST_FIRST.index(unit) if unit in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: collection order within each rank


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Names a failure the moment it happens (on the xdist controller too), so a CI log that is
    cut short still says which test failed; the full list is in the summary and the JUnit file."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:  # the controller, or a run without xdist
        ARTIFACTS.mkdir(exist_ok=True)
        with open(ARTIFACTS / "durations.tsv", "a") as f:  # as they happen: a cut run still says
            f.write(f"{report.duration:.2f}\t{report.when}\t{report.outcome}\t{report.nodeid}\n")
    if report.failed and (report.when == "call" or report.outcome == "failed"):
        worker = getattr(report, "node", None)
        where = f" [{worker.gateway.id}]" if worker is not None else ""
        print(
            f"\nFAILED {report.nodeid} ({report.when}, {report.duration:.1f} s){where}", flush=True
        )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Prints what the learning tests measured (their `figures` property), passed or failed.

    A test calls `record_property("figures", text)`; pytest-xdist carries the property back from
    its worker, where printing past the capture would not reach the log."""
    shown = False
    for reports in terminalreporter.stats.values():
        for report in reports:
            figures = [v for k, v in getattr(report, "user_properties", ()) if k == "figures"]
            if getattr(report, "when", None) != "call" or not figures:
                continue
            if not shown:
                terminalreporter.section("figures the learning tests measured")
                shown = True
            terminalreporter.write_line(f"{report.nodeid} ({report.outcome})")
            for text in figures:
                terminalreporter.write_line(str(text))


@pytest.fixture(scope="module", autouse=True)
def _release_compiled_programs() -> Iterator[None]:
    """Drop JAX's in-memory compiled programs after each module.

    A worker runs for most of an hour, and without this every program any earlier module
    compiled stays resident. (One CI run aborted inside XLA an hour in, in a test that passes
    alone with a 2.9 GB peak; this bounds what a worker holds.) A later module that needs a
    program again reads it from the persistent cache.
    """
    yield
    if "jax" in sys.modules:
        sys.modules["jax"].clear_caches()
    gc.collect()


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
    with capture.global_and_fixture_disabled():  # the curve as it trains, with `-n 0`
        return train_stand(tmp_path_factory.mktemp("trained_stand"))


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """A flushed database on the session's Redis for each test."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    yield redis_server.url
