"""Runs host trials through the jitted inverse and names every output column.

Shared by the InverseDynamics RPC and the inverse_dynamics job. A trial is padded to a length
bucket (the next power of two, at least MIN_BUCKET), so XLA compiles once per bucket, dtype and
static option set (smooth_window, smooth_forces, block_size); cop_threshold is a traced argument.
Compiled programs live in a bounded LRU cache (COMPILE_CACHE_SIZE entries; the least recently
used is dropped, and JAX's persistent cache makes a recompile of it cheap).
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from wildrobot.dynamics_inputs import Limits, TrialData, validate

from .inverse import Config, DynamicsModel, Result, Trial, make_inverse_fn

MIN_BUCKET = 256
COMPILE_CACHE_SIZE = 16
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
    "cop_outside",
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


@dataclasses.dataclass(frozen=True)
class ProgramKey:
    """What a compiled program depends on: never a float option's value."""

    model_id: int
    smooth_window: int
    smooth_forces: bool
    block_size: int
    bucket: int
    dtype: str
    fields: tuple[str, ...]  # the optional inputs present change the program too


class ProgramCache:
    """Bounded LRU of compiled inverse programs; `compiles` counts every compilation."""

    def __init__(self, size: int = COMPILE_CACHE_SIZE) -> None:
        self.size = size
        self.compiles = 0
        self._programs: collections.OrderedDict[ProgramKey, Any] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[ProgramKey, threading.Lock] = {}

    def __contains__(self, key: ProgramKey) -> bool:
        with self._lock:
            return key in self._programs

    def __len__(self) -> int:
        return len(self._programs)

    def get(self, model: DynamicsModel, config: Config, key: ProgramKey) -> Any:
        """The compiled program for `key`, compiling it (once, whoever asks) if absent."""
        with self._lock:
            if key in self._programs:
                self._programs.move_to_end(key)
                return self._programs[key]
            building = self._building.setdefault(key, threading.Lock())
        with building:  # one compile per key; other keys compile or run meanwhile
            with self._lock:
                if key in self._programs:
                    return self._programs[key]
            program = _compile(model, config, key)
            with self._lock:
                self.compiles += 1
                self._programs[key] = program
                while len(self._programs) > self.size:
                    self._programs.popitem(last=False)
                self._building.pop(key, None)
            return program


PROGRAMS = ProgramCache()


def program_key(model: DynamicsModel, config: Config, bucket: int, dtype: str,
                fields: tuple[str, ...]) -> ProgramKey:
    return ProgramKey(id(model), config.smooth_window, config.smooth_forces, config.block_size,
                      bucket, dtype, tuple(sorted(fields)))


def _compile(model: DynamicsModel, config: Config, key: ProgramKey) -> Any:
    fn = make_inverse_fn(model, config).jitted
    dtype = np.dtype(key.dtype)
    num_feet = len(model.foot_names)
    shapes = {
        "qpos": (key.bucket, model.nq),
        "grf": (key.bucket, num_feet, 3),
        "cop": (key.bucket, num_feet, 3),
        "free_moment": (key.bucket, num_feet, 3),
        "qvel": (key.bucket, model.nv),
        "qacc": (key.bucket, model.nv),
    }
    with jax.enable_x64(key.dtype == "float64"):
        spec = {k: jax.ShapeDtypeStruct(shapes[k], dtype) for k in key.fields}
        scalar = jax.ShapeDtypeStruct((), dtype)
        length = jax.ShapeDtypeStruct((), jnp.int32)
        return fn.lower(Trial(**spec), scalar, length, None, scalar).compile()


def warm(model: DynamicsModel, buckets: tuple[int, ...], dtypes: tuple[str, ...],
         config: Config | None = None, cache: ProgramCache | None = None) -> None:
    """Compiles the programs for these buckets and dtypes (qpos, grf, cop, free_moment given)."""
    cache = PROGRAMS if cache is None else cache
    config = config or Config()
    for dtype in dtypes:
        for bucket in buckets:
            key = program_key(model, config, bucket, dtype, ("qpos", "grf", "cop", "free_moment"))
            cache.get(model, config, key)


def _pad(array: np.ndarray, length: int) -> np.ndarray:
    extra = length - array.shape[0]
    return np.concatenate([array, np.repeat(array[-1:], extra, axis=0)]) if extra else array


def run_trial(
    model: DynamicsModel,
    trial: TrialData,
    config: Config | None = None,
    limits: Limits | None = None,
    dtype: str | None = None,
    cache: ProgramCache | None = None,
) -> list[Output]:
    """Validates (raises TrialError naming the input), pads, runs, names the outputs.

    dtype: cast the inputs first ("float32" / "float64"); None keeps the trial's own dtype.
    """
    trial, key = prepare(model, trial, config, limits, dtype)
    config = config or Config()
    program = (PROGRAMS if cache is None else cache).get(model, config, key)
    return run_prepared(model, trial, config, key, program)


def prepare(
    model: DynamicsModel,
    trial: TrialData,
    config: Config | None = None,
    limits: Limits | None = None,
    dtype: str | None = None,
) -> tuple[TrialData, ProgramKey]:
    """Validates (TrialError naming the input) and picks the program the trial needs."""
    limits = limits or Limits()
    config = config or Config()
    if dtype is not None:
        trial = trial.astype(np.dtype(dtype))
    validate(
        trial,
        nq=model.nq,
        nv=model.nv,
        foot_names=model.foot_names,
        limits=limits,
        joint_names=joint_order(model),
    )
    bucket = bucket_for(trial.num_frames, limits.max_frames)
    key = program_key(model, config, bucket, trial.qpos.dtype.name, tuple(trial.arrays()))
    return trial, key


def run_prepared(
    model: DynamicsModel, trial: TrialData, config: Config, key: ProgramKey, program: Any
) -> list[Output]:
    num_frames = trial.num_frames
    dtype = trial.qpos.dtype
    with jax.enable_x64(dtype == np.float64):
        padded = Trial(**{k: jnp.asarray(_pad(v, key.bucket)) for k, v in trial.arrays().items()})
        result = jax.device_get(
            program(
                padded,
                np.asarray(trial.rate_hz, dtype),
                np.asarray(num_frames, np.int32),
                None,
                np.asarray(config.cop_threshold, dtype),
            )
        )
    return name_outputs(model, result, num_frames)


def joint_order(model: DynamicsModel) -> tuple[str, ...]:
    """The model's joints after the root, in qpos order (what a CSV's joint columns must be)."""
    return tuple(model.mj_model.joint(j).name for j in range(1, model.mj_model.njnt))


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
        "cop_outside": (tuple(model.foot_names), ""),
    }
    return [
        Output(name, np.asarray(getattr(result, name))[:num_frames], *spec[name])
        for name in OUTPUT_NAMES
    ]


def save_outputs(outputs: list[Output], path) -> None:
    """An .npz with each output plus `<name>__columns` and `<name>__unit`."""
    arrays: dict[str, np.ndarray] = {}
    for out in outputs:
        arrays[out.name] = out.array
        arrays[f"{out.name}__columns"] = np.array(out.columns, dtype=str)
        arrays[f"{out.name}__unit"] = np.array(out.unit)
    np.savez(path, **arrays)
