"""The trial file format (.npz and .csv), and validation of a trial against a model.

.npz, named arrays (T frames, F feet, float32 or float64):
  qpos [T, nq]          root position (m, world), root quaternion (w, x, y, z), joints (rad)
  rate_hz []            sampling rate, frames per second
  grf [T, F, 3]         ground force on each foot (N, world)
  cop [T, F, 3]         centre of pressure (m, world)
  free_moment [T, F, 3] optional: moment about the COP (N m, world)
  qvel [T, nv], qacc [T, nv]  optional: MuJoCo velocities/accelerations (else differences)
  foot_names [F]        optional: names of the feet, in the model's order (e.g. left, right)
  true_* [...]          optional: known answers written by the generator (ignored as input)

.csv: a header row and one row per frame. Columns: `time` (s, uniform), `root_x`, `root_y`,
`root_z`, `root_qw`, `root_qx`, `root_qy`, `root_qz`, one column per joint named like the
model's joints, and per foot `<foot>_grf_x|y|z`, `<foot>_cop_x|y|z` and optionally
`<foot>_moment_x|y|z`. Extra columns are an error (a misspelled name would be silently lost).
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

MIN_RATE_HZ = 10.0
MAX_RATE_HZ = 10_000.0
QUAT_TOLERANCE = 1e-3
ARRAYS = ("qpos", "grf", "cop", "free_moment", "qvel", "qacc")
OPTIONAL = ("free_moment", "qvel", "qacc")
AXES = ("x", "y", "z")


class TrialError(ValueError):
    """A trial input is unusable; `field` names the input, the message says what is wrong."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclasses.dataclass
class TrialData:
    """A trial as host arrays (see the module docstring for shapes and units)."""

    qpos: np.ndarray
    rate_hz: float
    grf: np.ndarray
    cop: np.ndarray
    free_moment: np.ndarray | None = None
    qvel: np.ndarray | None = None
    qacc: np.ndarray | None = None
    foot_names: tuple[str, ...] = ()
    truth: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.qpos.shape[0])

    def arrays(self) -> dict[str, np.ndarray]:
        """The input arrays that are present, by name."""
        return {k: getattr(self, k) for k in ARRAYS if getattr(self, k) is not None}

    def astype(self, dtype: Any) -> TrialData:
        cast = {k: np.asarray(v, dtype) for k, v in self.arrays().items()}
        return dataclasses.replace(self, **cast)


def save_npz(trial: TrialData, path: str | Path | io.BytesIO) -> None:
    arrays: dict[str, Any] = dict(trial.arrays())
    arrays["rate_hz"] = np.float64(trial.rate_hz)
    if trial.foot_names:
        arrays["foot_names"] = np.array(trial.foot_names)
    arrays.update({f"true_{k}": v for k, v in trial.truth.items()})
    np.savez(path, **arrays)


def from_arrays(arrays: Mapping[str, np.ndarray]) -> TrialData:
    """A TrialData from named arrays (an opened .npz); raises TrialError naming what is wrong."""
    for name in ("qpos", "grf", "cop", "rate_hz"):
        if name not in arrays:
            raise TrialError(name, "missing")
    known = set(ARRAYS) | {"rate_hz", "foot_names"}
    for name in arrays:
        if name not in known and not name.startswith("true_"):
            raise TrialError(name, f"unknown array (expected some of {sorted(known)})")
    rate = np.asarray(arrays["rate_hz"])
    if rate.size != 1 or rate.dtype.kind not in "fiu":
        raise TrialError("rate_hz", "must be one number")
    names = (
        tuple(str(n) for n in np.asarray(arrays["foot_names"]).ravel())
        if "foot_names" in arrays
        else ()
    )
    return TrialData(
        qpos=np.asarray(arrays["qpos"]),
        rate_hz=float(rate.ravel()[0]),
        grf=np.asarray(arrays["grf"]),
        cop=np.asarray(arrays["cop"]),
        free_moment=_opt(arrays, "free_moment"),
        qvel=_opt(arrays, "qvel"),
        qacc=_opt(arrays, "qacc"),
        foot_names=names,
        truth={k[5:]: np.asarray(v) for k, v in arrays.items() if k.startswith("true_")},
    )


def _opt(arrays: Mapping[str, np.ndarray], name: str) -> np.ndarray | None:
    return np.asarray(arrays[name]) if name in arrays else None


def load_npz(source: str | Path | io.BytesIO) -> TrialData:
    try:
        with np.load(source, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, EOFError) as exc:
        raise TrialError("trial", f"not a readable .npz file ({exc})") from exc
    return from_arrays(arrays)


def csv_columns(joint_names: Sequence[str], foot_names: Sequence[str], moments: bool) -> list[str]:
    columns = ["time", "root_x", "root_y", "root_z", "root_qw", "root_qx", "root_qy", "root_qz"]
    columns += list(joint_names)
    for foot in foot_names:
        columns += [f"{foot}_grf_{a}" for a in AXES] + [f"{foot}_cop_{a}" for a in AXES]
        if moments:
            columns += [f"{foot}_moment_{a}" for a in AXES]
    return columns


def save_csv(trial: TrialData, path: str | Path, joint_names: Sequence[str]) -> None:
    """Writes qpos, grf, cop (and free_moment); velocities are not part of the CSV format."""
    moments = trial.free_moment is not None
    columns = csv_columns(joint_names, trial.foot_names, moments)
    t = np.arange(trial.num_frames)[:, None] / trial.rate_hz
    parts = [t, trial.qpos]
    for k in range(len(trial.foot_names)):
        parts += [trial.grf[:, k], trial.cop[:, k]]
        if moments:
            parts.append(trial.free_moment[:, k])
    table = np.concatenate(parts, axis=1)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(table.tolist())


def load_csv(path: str | Path, joint_names: Sequence[str], foot_names: Sequence[str]) -> TrialData:
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 2:
        raise TrialError("csv", "needs a header row and at least one frame")
    header = [c.strip() for c in rows[0]]
    try:
        table = np.array([[float(v) for v in row] for row in rows[1:]], dtype=np.float64)
    except ValueError as exc:
        raise TrialError("csv", f"every cell must be a number ({exc})") from exc
    moments = any(c.endswith("_moment_x") for c in header)
    expected = csv_columns(joint_names, foot_names, moments)
    if set(header) != set(expected):
        missing = [c for c in expected if c not in header]
        extra = [c for c in header if c not in expected]
        raise TrialError("csv", f"columns missing {missing[:5]}, unexpected {extra[:5]}")
    col = {name: table[:, header.index(name)] for name in header}

    def stack(names: Sequence[str]) -> np.ndarray:
        return np.stack([col[n] for n in names], axis=-1)

    time = col["time"]
    steps = np.diff(time)
    if (
        time.size < 2
        or np.any(steps <= 0)
        or np.ptp(steps) > 1e-6 * max(np.mean(steps), 1e-12) + 1e-9
    ):
        raise TrialError("time", "must increase in uniform steps")
    root = ["root_x", "root_y", "root_z", "root_qw", "root_qx", "root_qy", "root_qz"]

    def feet(kind: str) -> np.ndarray:
        return np.stack(
            [stack([f"{foot}_{kind}_{a}" for a in AXES]) for foot in foot_names], axis=1
        )

    return TrialData(
        qpos=stack(root + list(joint_names)),
        rate_hz=float(1.0 / np.mean(steps)),
        grf=feet("grf"),
        cop=feet("cop"),
        free_moment=feet("moment") if moments else None,
        foot_names=tuple(foot_names),
    )


@dataclasses.dataclass(frozen=True)
class Limits:
    max_frames: int = 20_000
    min_rate_hz: float = MIN_RATE_HZ
    max_rate_hz: float = MAX_RATE_HZ


def validate(
    trial: TrialData,
    *,
    nq: int,
    nv: int,
    foot_names: Sequence[str],
    limits: Limits | None = None,
    dtypes: Sequence[str] = ("float32", "float64"),
) -> None:
    """Raises TrialError naming the first unusable input: shape, dtype, NaN/Inf, quaternion
    norm, sampling rate, frame count, foot names."""
    limits = limits or Limits()
    num_frames = trial.qpos.shape[0] if trial.qpos.ndim else 0
    num_feet = len(foot_names)
    shapes = {
        "qpos": (num_frames, nq),
        "grf": (num_frames, num_feet, 3),
        "cop": (num_frames, num_feet, 3),
        "free_moment": (num_frames, num_feet, 3),
        "qvel": (num_frames, nv),
        "qacc": (num_frames, nv),
    }
    if num_frames < 3:
        raise TrialError("qpos", f"needs at least 3 frames, got {num_frames}")
    if num_frames > limits.max_frames:
        raise TrialError("qpos", f"{num_frames} frames is more than the limit {limits.max_frames}")
    dtype = trial.qpos.dtype
    for name, array in trial.arrays().items():
        if array.dtype.name not in dtypes:
            raise TrialError(name, f"dtype {array.dtype.name} is not one of {list(dtypes)}")
        if array.dtype != dtype:
            raise TrialError(name, f"dtype {array.dtype.name} differs from qpos ({dtype.name})")
        if array.shape != shapes[name]:
            raise TrialError(name, f"shape {list(array.shape)}, expected {list(shapes[name])}")
        bad = ~np.isfinite(array)
        if bad.any():
            frame = int(np.argwhere(bad)[0][0])
            raise TrialError(
                name, f"{int(bad.sum())} values are NaN or Inf (first at frame {frame})"
            )
    norms = np.linalg.norm(trial.qpos[:, 3:7].astype(np.float64), axis=-1)
    off = np.abs(norms - 1.0) > QUAT_TOLERANCE
    if off.any():
        frame = int(np.argmax(off))
        raise TrialError(
            "qpos",
            f"root quaternion (columns 3-6) is not unit length at frame {frame} "
            f"(norm {norms[frame]:.6g}, tolerance {QUAT_TOLERANCE})",
        )
    if (
        not np.isfinite(trial.rate_hz)
        or not limits.min_rate_hz <= trial.rate_hz <= limits.max_rate_hz
    ):
        raise TrialError(
            "rate_hz", f"{trial.rate_hz} is outside [{limits.min_rate_hz}, {limits.max_rate_hz}]"
        )
    if trial.foot_names and tuple(trial.foot_names) != tuple(foot_names):
        raise TrialError("foot_names", f"{list(trial.foot_names)}, expected {list(foot_names)}")
