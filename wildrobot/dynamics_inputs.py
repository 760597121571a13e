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
import math
import zipfile
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

# Options (one rule for the library's Config, the RPC, the SDK, the CLI and the batch spec).
MAX_SMOOTH_WINDOW = 101
MIN_COP_THRESHOLD_N = 0.0
MAX_COP_THRESHOLD_N = 1000.0
# A loaded foot's COP further than this outside its support box is flagged (cop_outside).
COP_SUPPORT_MARGIN_M = 0.05


class TrialError(ValueError):
    """A trial input is unusable; `field` names the input, the message says what is wrong."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def validate_options(
    smooth_window: Any = 1, cop_threshold: Any = 5.0, smooth_forces: Any = True
) -> None:
    """Raises TrialError naming the option: smooth_window an odd integer in
    [1, MAX_SMOOTH_WINDOW]; cop_threshold a finite number of newtons in
    [MIN_COP_THRESHOLD_N, MAX_COP_THRESHOLD_N]; smooth_forces a bool."""
    if isinstance(smooth_window, bool) or not isinstance(smooth_window, (int, np.integer)):
        raise TrialError("smooth_window", f"must be an integer, got {smooth_window!r}")
    if not 1 <= smooth_window <= MAX_SMOOTH_WINDOW or smooth_window % 2 == 0:
        raise TrialError(
            "smooth_window",
            f"must be odd and in [1, {MAX_SMOOTH_WINDOW}], got {smooth_window}",
        )
    if isinstance(cop_threshold, bool) or not isinstance(
        cop_threshold, (int, float, np.integer, np.floating)
    ):
        raise TrialError("cop_threshold", f"must be a number, got {cop_threshold!r}")
    if not math.isfinite(cop_threshold) or not (
        MIN_COP_THRESHOLD_N <= cop_threshold <= MAX_COP_THRESHOLD_N
    ):
        raise TrialError(
            "cop_threshold",
            f"must be finite and in [{MIN_COP_THRESHOLD_N:g}, {MAX_COP_THRESHOLD_N:g}] N, "
            f"got {cop_threshold}",
        )
    if not isinstance(smooth_forces, (bool, np.bool_)):
        raise TrialError("smooth_forces", f"must be a bool, got {smooth_forces!r}")


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
    joint_names: tuple[str, ...] = ()  # declared by a .csv header (model order expected)
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


_ZIP_MAGIC = b"PK\x03\x04"
_NPY_MAGIC = b"\x93NUMPY"


def load_npz(source: str | Path | io.BytesIO | bytes, field: str = "trial") -> TrialData:
    """Reads an .npz trial; raises TrialError(field, ...) for anything that is not one."""
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        if isinstance(source, io.BytesIO):
            head = source.getvalue()[:6]
        else:
            with open(source, "rb") as handle:
                head = handle.read(6)
    except OSError as exc:
        raise TrialError(field, f"cannot be read ({exc.strerror or exc})") from None
    if head.startswith(_NPY_MAGIC):
        raise TrialError(field, "is a single .npy array; a trial is an .npz of named arrays")
    if not head.startswith(_ZIP_MAGIC):
        raise TrialError(field, "is not an .npz file (an .npz is a zip archive of named arrays)")
    try:
        with np.load(source, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        # numpy's own words (e.g. its allow_pickle hint) would not help: say what the rule is.
        kind = "holds a pickled (object) array" if "pickle" in str(exc) else "is damaged"
        raise TrialError(field, f"is not a readable .npz of numeric arrays ({kind})") from None
    return from_arrays(arrays)


def csv_header_names(header: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(joint names, foot names) declared by a CSV header, in the order they appear."""
    root = {"time", "root_x", "root_y", "root_z", "root_qw", "root_qx", "root_qy", "root_qz"}
    feet: list[str] = []
    for column in header:
        if column.endswith("_grf_x"):
            feet.append(column[: -len("_grf_x")])
    per_foot = {f"{f}_{k}_{a}" for f in feet for k in ("grf", "cop", "moment") for a in AXES}
    joints = tuple(c for c in header if c not in root and c not in per_foot)
    return joints, tuple(feet)


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


def load_csv(
    path: str | Path,
    joint_names: Sequence[str] | None = None,
    foot_names: Sequence[str] | None = None,
) -> TrialData:
    """Reads a .csv trial. Joint and foot names None: those the header declares (in its order),
    recorded in the TrialData so validate() can compare them with the model's."""
    try:
        with open(path, newline="") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError) as exc:
        raise TrialError("csv", f"cannot be read as text ({exc})") from None
    if len(rows) < 2:
        raise TrialError("csv", "needs a header row and at least one frame")
    header = [c.strip() for c in rows[0]]
    declared_joints, declared_feet = csv_header_names(header)
    joint_names = declared_joints if joint_names is None else tuple(joint_names)
    foot_names = declared_feet if foot_names is None else tuple(foot_names)
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
        joint_names=tuple(joint_names),
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
    joint_names: Sequence[str] | None = None,
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
        raise TrialError(
            "foot_names",
            f"{list(trial.foot_names)} declared, expected {list(foot_names)} (grf, cop and "
            "free_moment must follow the model's foot order)",
        )
    if (
        trial.joint_names
        and joint_names is not None
        and tuple(trial.joint_names) != tuple(joint_names)
    ):
        raise TrialError(
            "joint_names",
            f"{list(trial.joint_names)} declared, expected the model's order {list(joint_names)}",
        )
