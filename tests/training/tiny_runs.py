"""Tiny trainer runs: a small PointMass spec and hooks that record what the trainer reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wildrobot.specs import PpoSpec

# 32 envs x 4 unrolls of 10 steps: 1280 env steps per iteration; compiles in a few seconds.
POINT_MASS = {
    "task": "PointMass",
    "num_envs": 32,
    "batch_size": 32,
    "num_minibatches": 4,
    "unroll_length": 10,
    "num_updates_per_batch": 2,
    "episode_length": 50,
    "policy_hidden_sizes": (32, 32),
    "value_hidden_sizes": (32, 32),
}
STEPS_PER_ITERATION = 32 * 4 * 10
# WildRobotStand after one PPO iteration with 16-unit layers: a real checkpoint for the tests
# that need one (export, TTA) at ~35 s of compile on a cold cache.
STAND_TINY = {
    "task": "WildRobotStand",
    "num_envs": 4,
    "batch_size": 4,
    "num_minibatches": 1,
    "unroll_length": 4,
    "num_updates_per_batch": 1,
    "episode_length": 50,
    "policy_hidden_sizes": (16, 16),
    "value_hidden_sizes": (16, 16),
    "num_timesteps": 16,
}

ENV_STEPS_PER_ITERATION_PER_ENV = 4 * 10


def point_mass_spec(iterations: int, **overrides: Any) -> PpoSpec:
    return PpoSpec(**{**POINT_MASS, "num_timesteps": iterations * STEPS_PER_ITERATION, **overrides})


class RecordingHooks:
    """Records metrics and checkpoints; asks to stop after `stop_after` iterations."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.metrics: list[tuple[int, dict[str, float]]] = []
        self.checkpoints: list[tuple[int, Path]] = []
        self.bests: list[tuple[int, Path]] = []
        self.stop_after = stop_after

    def on_metrics(self, step: int, metrics: dict[str, float]) -> None:
        self.metrics.append((step, dict(metrics)))

    def on_checkpoint(self, step: int, path: Path, best: bool = False) -> None:
        # Called only once the directory is complete and in its final place.
        assert (path / "spec.json").is_file() and (path / "network_config.json").is_file()
        assert (path / "state").is_dir() and (path / "policy").is_dir()
        self.checkpoints.append((step, path))
        if best:
            self.bests.append((step, path))

    def should_stop(self) -> bool:
        return self.stop_after is not None and len(self.metrics) >= self.stop_after
