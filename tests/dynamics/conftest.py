"""Shared trials: simulated WildRobot motion with known torques (generated once per session)."""

from __future__ import annotations

import pytest

from wildrobot.envs.dynamics import generate
from wildrobot.envs.dynamics.trial import TrialData
from wildrobot.envs.dynamics.wildrobot import dynamics_model

NUM_FRAMES = 120


@pytest.fixture(scope="session")
def model():
    return dynamics_model()


@pytest.fixture(scope="session")
def sim_trial() -> TrialData:
    return generate.simulate_trial(NUM_FRAMES, seed=3)
