"""Runs host trials through the jitted inverse and names every output column.

Shared by the InverseDynamics RPC and the inverse_dynamics job. A trial is padded to a length
bucket (the next power of two, at least MIN_BUCKET), so XLA compiles once per bucket, dtype and
option set, and each compiled function stays cached for the life of the process.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from wildrobot.envs.dynamics.inverse import Config, DynamicsModel, Result, Trial, make_inverse_fn
from wildrobot.envs.dynamics.trial import Limits, TrialData, validate

MIN_BUCKET = 256
AXES = ("x", "y", "z")
OUTPUT_NAMES = (
    "joint_torque",
    "residual_force",
    "residual_moment",
    "ankle_moment",
    "cop",
    "cop_valid",
    "valid",
    "qfrc",
)


@dataclasses.dataclass(frozen=True)
class Output:
    """One output array [T, ...]; `columns` names its trailing axes flattened in C order."""

    name: str
    array: np.ndarray
    columns: tuple[str, ...]
    unit: str


def bucket_for(num_frames: int, max_frames: int) -> int:
    """The padded length: the next power of two >= num_frames (at least MIN_BUCKET)."""
    bucket = MIN_BUCKET
    while bucket < num_frames:
        bucket *= 2
    return min(bucket, max(max_frames, MIN_BUCKET))


@functools.cache
def _inverse_fn(model: DynamicsModel, config: Config):  # noqa: ANN202 - a jitted function
    return make_inverse_fn(model, config)


def _pad(array: np.ndarray, length: int) -> np.ndarray:
    extra = length - array.shape[0]
    return np.concatenate([array, np.repeat(array[-1:], extra, axis=0)]) if extra else array


def run_trial(
    model: DynamicsModel,
    trial: TrialData,
    config: Config | None = None,
    limits: Limits | None = None,
    dtype: str | None = None,
) -> list[Output]:
    """Validates (raises TrialError naming the input), pads, runs, names the outputs.

    dtype: cast the inputs first ("float32" / "float64"); None keeps the trial's own dtype.
    """
    limits = limits or Limits()
    if dtype is not None:
        trial = trial.astype(np.dtype(dtype))
    validate(trial, nq=model.nq, nv=model.nv, foot_names=model.foot_names, limits=limits)
    num_frames = trial.num_frames
    bucket = bucket_for(num_frames, limits.max_frames)
    fn = _inverse_fn(model, config or Config())
    is64 = trial.qpos.dtype == np.float64
    with jax.enable_x64(is64):
        padded = Trial(**{k: jnp.asarray(_pad(v, bucket)) for k, v in trial.arrays().items()})
        result = jax.device_get(fn(padded, np.asarray(trial.rate_hz, trial.qpos.dtype), num_frames))
    return name_outputs(model, result, num_frames)


def name_outputs(model: DynamicsModel, result: Result, num_frames: int) -> list[Output]:
    feet = tuple(f"{foot}.{a}" for foot in model.foot_names for a in AXES)
    root = ("root.x", "root.y", "root.z", "root.rx", "root.ry", "root.rz")
    joints = tuple(model.mj_model.joint(j).name for j in range(1, model.mj_model.njnt))
    spec = {
        "joint_torque": (tuple(model.joint_names), "N m"),
        "residual_force": (AXES, "N"),
        "residual_moment": (AXES, "N m"),
        "ankle_moment": (feet, "N m"),
        "cop": (feet, "m"),
        "cop_valid": (tuple(model.foot_names), ""),
        "valid": ((), ""),
        "qfrc": (root + joints, "N (root.x-z), N m (others)"),
    }
    return [
        Output(name, np.asarray(getattr(result, name))[:num_frames], *spec[name])
        for name in OUTPUT_NAMES
    ]


def save_outputs(outputs: list[Output], path) -> None:  # noqa: ANN001 - path or file object
    """An .npz with each output plus `<name>__columns` and `<name>__unit`."""
    arrays: dict[str, np.ndarray] = {}
    for out in outputs:
        arrays[out.name] = out.array
        arrays[f"{out.name}__columns"] = np.array(out.columns, dtype=str)
        arrays[f"{out.name}__unit"] = np.array(out.unit)
    np.savez(path, **arrays)
