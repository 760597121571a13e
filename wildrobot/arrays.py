"""Dense arrays on the wire (wildrobot.v1.Array): little-endian bytes, dtype, shape."""

from __future__ import annotations

import math

import numpy as np

from wildrobot.v1 import dynamics_pb2

_TO_PROTO = {
    np.dtype("<f4"): dynamics_pb2.DTYPE_FLOAT32,
    np.dtype("<f8"): dynamics_pb2.DTYPE_FLOAT64,
    np.dtype("bool"): dynamics_pb2.DTYPE_BOOL,
}
_FROM_PROTO = {v: k for k, v in _TO_PROTO.items()}
MAX_DIMS = 4


def to_proto(array: np.ndarray) -> dynamics_pb2.Array:
    array = np.asarray(array)
    dtype = array.dtype.newbyteorder("<") if array.dtype.kind == "f" else array.dtype
    if dtype not in _TO_PROTO:
        raise ValueError(f"dtype {array.dtype} has no wire form (float32, float64, bool)")
    data = np.ascontiguousarray(array, dtype=dtype).tobytes()
    return dynamics_pb2.Array(data=data, dtype=_TO_PROTO[dtype], shape=list(array.shape))


def from_proto(msg: dynamics_pb2.Array, name: str) -> np.ndarray:
    """Raises ValueError('<name>: ...') for an unknown dtype or bytes that do not fit the shape."""
    dtype = _FROM_PROTO.get(msg.dtype)
    if dtype is None:
        raise ValueError(f"{name}: dtype must be FLOAT32 or FLOAT64 (got {msg.dtype})")
    shape = tuple(int(s) for s in msg.shape)
    if len(shape) > MAX_DIMS:
        raise ValueError(f"{name}: {len(shape)} dimensions, at most {MAX_DIMS}")
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no int64 overflow
    if len(msg.data) != expected:
        raise ValueError(
            f"{name}: {len(msg.data)} bytes do not hold shape {list(shape)} of {dtype.name} "
            f"({expected} bytes)"
        )
    return np.frombuffer(msg.data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
