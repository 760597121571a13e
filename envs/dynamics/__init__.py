"""Inverse dynamics of recorded or simulated WildRobot motion on MuJoCo MJX (see
docs/inverse_dynamics.md): a pure JAX function over whole trials, the trial file format, and a
generator of trials with known torques."""

from .inverse import (
    Config,
    DynamicsModel,
    Foot,
    Result,
    Trial,
    inverse_dynamics,
    make_inverse_fn,
)
from .trial import TrialData, TrialError

__all__ = [
    "Config",
    "DynamicsModel",
    "Foot",
    "Result",
    "Trial",
    "TrialData",
    "TrialError",
    "inverse_dynamics",
    "make_inverse_fn",
]
