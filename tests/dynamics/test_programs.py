"""Compiled inverse programs: a float option is a traced argument (no recompile per value), the
cache is a bounded LRU, a compile never holds up a call whose program is ready, and a COP far
outside the foot is flagged per frame."""

from __future__ import annotations

import asyncio
import dataclasses
import threading

import numpy as np
import pytest

from wildrobot.envs.dynamics import Config, runner
from wildrobot.envs.dynamics.trial import TrialError

FIELDS = ("qpos", "grf", "cop", "free_moment")


@pytest.fixture(scope="module")
def programs(model):
    """One float64 program for bucket 256 (shared through the JAX compilation cache)."""
    cache = runner.ProgramCache(size=2)
    runner.warm(model, (256,), ("float64",), Config(), cache)
    return cache


@pytest.fixture(scope="module")
def trial(sim_trial):
    """The inputs the warmed program takes (qpos, grf, cop, free_moment; velocities derived)."""
    return dataclasses.replace(sim_trial, qvel=None, qacc=None)


def _run(model, trial, programs, **options):
    outputs = runner.run_trial(model, trial, Config(**options), dtype="float64", cache=programs)
    return {o.name: o.array for o in outputs}


def test_two_cop_thresholds_share_one_program(model, trial, programs) -> None:
    before = programs.compiles
    low = _run(model, trial, programs, cop_threshold=5.0)
    high = _run(model, trial, programs, cop_threshold=250.0)
    assert programs.compiles == before == 1
    # The value reaches the program: a higher threshold unloads more feet.
    assert high["cop_valid"].sum() < low["cop_valid"].sum()
    np.testing.assert_array_equal(np.isnan(high["cop"][..., 0]), ~high["cop_valid"])
    with pytest.raises(TrialError, match="cop_threshold"):
        Config(cop_threshold=float("nan"))


def test_the_cache_is_a_bounded_lru(model, programs, monkeypatch) -> None:
    monkeypatch.setattr(runner, "_compile", lambda model, config, key: object())
    cache = runner.ProgramCache(size=2)
    keys = [runner.program_key(model, Config(), b, "float32", FIELDS) for b in (256, 512, 1024)]
    cache.get(model, Config(), keys[0])
    cache.get(model, Config(), keys[1])
    cache.get(model, Config(), keys[0])  # most recently used now
    cache.get(model, Config(), keys[2])  # evicts keys[1]
    assert keys[0] in cache and keys[2] in cache and keys[1] not in cache
    assert cache.compiles == 3 and len(cache) == 2


def test_a_cop_far_outside_the_foot_is_flagged(model, trial, programs) -> None:
    clean = _run(model, trial, programs)
    assert not clean["cop_outside"].any()  # simulated contacts lie under the feet
    cop = trial.cop.copy()
    loaded = np.argwhere(clean["cop_valid"][:, 0])[10, 0]
    cop[loaded, 0, 0] += 10.0  # 10 m off
    flagged = _run(model, dataclasses.replace(trial, cop=cop), programs)
    assert np.argwhere(flagged["cop_outside"]).tolist() == [[loaded, 0]]


def test_a_compile_does_not_hold_up_a_ready_call(model, trial, programs, monkeypatch):
    """The RPC's service: a cold program compiles on its own thread while warm calls run."""
    from wildrobot.server.dynamics import InverseDynamicsService

    service = InverseDynamicsService.__new__(InverseDynamicsService)
    InverseDynamicsService.__init__(service)
    service.programs = programs
    release = threading.Event()
    real = runner._compile

    def slow_compile(model, config, key):
        if config.smooth_window == 3:
            assert release.wait(60)
            return object()  # never run; skips a real 15 s compile after the test
        return real(model, config, key)

    monkeypatch.setattr(runner, "_compile", slow_compile)
    inputs = {k: getattr(trial, k) for k in FIELDS}

    async def scenario() -> None:
        cold = asyncio.create_task(service.run(inputs, trial.rate_hz, {"smooth_window": 3}))
        await asyncio.sleep(0.2)
        warm = await asyncio.wait_for(service.run(inputs, trial.rate_hz, {}), 30)
        assert not cold.done() and warm[0].name == "joint_torque"
        release.set()
        cold.cancel()

    try:
        asyncio.run(scenario())
    finally:
        release.set()
        service.close()
