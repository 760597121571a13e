"""The InverseDynamics RPC from Python: request building and named results (used by the SDK).

from . import Client

with Client("localhost:50051", token) as client:
    result = client.inverse_dynamics(qpos, grf, cop, rate_hz=250.0)
    result["joint_torque"]            # [T, 17] numpy array
    result.columns["joint_torque"]    # ("waist_yaw", "left_hip_pitch", ...)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from wildrobot import arrays, dynamics_inputs
from wildrobot.v1 import dynamics_pb2

INPUT_NAMES = ("qpos", "grf", "cop", "free_moment", "qvel", "qacc")


@dataclasses.dataclass(frozen=True)
class InverseDynamicsResult(Mapping):
    """Output arrays by name ([T, ...]); `columns` names their trailing axes, `units` their units."""

    arrays: dict[str, np.ndarray]
    columns: dict[str, tuple[str, ...]]
    units: dict[str, str]
    # Frames where a loaded foot's COP is outside its support (see `cop_outside`).
    cop_outside_frames: int = 0

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def __iter__(self):
        return iter(self.arrays)

    def __len__(self) -> int:
        return len(self.arrays)

    def save_npz(self, path: str | Path) -> None:
        """Each output plus `<name>__columns` and `<name>__unit` (the job artifacts' format)."""
        out: dict[str, np.ndarray] = {}
        for name, array in self.arrays.items():
            out[name] = array
            out[f"{name}__columns"] = np.array(self.columns[name], dtype=str)
            out[f"{name}__unit"] = np.array(self.units[name])
        np.savez(path, **out)


def build_request(
    inputs: Mapping[str, Any],
    rate_hz: float,
    options: Mapping[str, Any],
    names: Mapping[str, Any] | None = None,
) -> dynamics_pb2.InverseDynamicsRequest:
    """inputs: arrays by INPUT_NAMES (None: absent); options: smooth_window, smooth_forces,
    cop_threshold (None: the server's default), checked here with the rule the server uses
    (dynamics_inputs.validate_options; TrialError names the option); names: foot_names and
    joint_names a trial file declares (the server checks them against the model). float64
    inputs stay float64; anything else that is not float32 becomes float32."""
    unknown = sorted(set(inputs) - set(INPUT_NAMES))
    if unknown:
        raise dynamics_inputs.TrialError(unknown[0], f"unknown input (expected {INPUT_NAMES})")
    given = {k: v for k, v in options.items() if v is not None}
    dynamics_inputs.validate_options(**given)
    request = dynamics_pb2.InverseDynamicsRequest(rate_hz=float(rate_hz))
    for name, values in (names or {}).items():
        if values:
            getattr(request, name).extend(str(v) for v in values)
    for name in INPUT_NAMES:
        value = inputs.get(name)
        if value is None:
            continue
        array = np.asarray(value)
        if array.dtype not in (np.float32, np.float64):
            array = array.astype(np.float32)
        getattr(request, name).CopyFrom(arrays.to_proto(array))
    for name, value in given.items():
        setattr(request.options, name, value)
    return request


SLICE_BYTES = 128 * 1024  # per stream message: well under any server's message limit


def stream_requests(
    request: dynamics_pb2.InverseDynamicsRequest,
) -> list[dynamics_pb2.InverseDynamicsRequest]:
    """The request as consecutive frame slices for InverseDynamicsStream (the first keeps the
    rate, options and names)."""
    present = [n for n in INPUT_NAMES if request.HasField(n)]
    decoded = {n: arrays.from_proto(getattr(request, n), n) for n in present}
    frames = decoded["qpos"].shape[0] if "qpos" in decoded and decoded["qpos"].ndim else 0
    per_frame = sum(a.nbytes // max(a.shape[0], 1) for a in decoded.values() if a.ndim) or 1
    step = max(1, SLICE_BYTES // per_frame)
    messages = []
    for start in range(0, max(frames, 1), step):
        message = dynamics_pb2.InverseDynamicsRequest()
        if start == 0:
            message.CopyFrom(request)
        for name, array in decoded.items():
            part = array[start : start + step] if array.ndim else array
            getattr(message, name).CopyFrom(arrays.to_proto(part))
        messages.append(message)
    return messages


def result_from_stream(
    responses: list[dynamics_pb2.InverseDynamicsResponse],
) -> InverseDynamicsResult:
    """Joins InverseDynamicsStream's frame slices (in order of first_frame) into one result."""
    responses = sorted(responses, key=lambda r: r.first_frame)
    first = responses[0]
    joined = {
        o.name: np.concatenate([arrays.from_proto(r.outputs[i].array, o.name) for r in responses])
        for i, o in enumerate(first.outputs)
    }
    total = first.num_frames
    if any(a.shape[0] != total for a in joined.values()):
        raise ValueError(f"InverseDynamicsStream: slices do not add up to {total} frames")
    return InverseDynamicsResult(
        arrays=joined,
        columns={o.name: tuple(o.columns) for o in first.outputs},
        units={o.name: o.unit for o in first.outputs},
        cop_outside_frames=int(first.cop_outside_frames),
    )


def result_from_proto(response: dynamics_pb2.InverseDynamicsResponse) -> InverseDynamicsResult:
    return InverseDynamicsResult(
        arrays={o.name: arrays.from_proto(o.array, o.name) for o in response.outputs},
        columns={o.name: tuple(o.columns) for o in response.outputs},
        units={o.name: o.unit for o in response.outputs},
        cop_outside_frames=int(response.cop_outside_frames),
    )
