"""Tiny checkpoints to export: WildRobotStand after one PPO iteration with 16-unit layers
(~35 s to compile on a cold cache, 2-core CPU; shared by the module's tests) and PointMass."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.tiny_runs import STAND_TINY, RecordingHooks, point_mass_spec
from wildrobot.specs import PpoSpec


@pytest.fixture(scope="session")
def stand_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from wildrobot.workers.training.ppo import train_ppo

    run_dir = tmp_path_factory.mktemp("stand-job")
    result = train_ppo(PpoSpec(**STAND_TINY), run_dir, RecordingHooks())
    assert result.checkpoint_dir is not None
    return Path(result.checkpoint_dir)


@pytest.fixture(scope="session")
def point_mass_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from wildrobot.workers.training.ppo import train_ppo

    run_dir = tmp_path_factory.mktemp("point-mass-job")
    result = train_ppo(point_mass_spec(1), run_dir, RecordingHooks())
    assert result.checkpoint_dir is not None
    return Path(result.checkpoint_dir)
