"""Reads TensorBoard event files without TensorBoard (TFRecord framing + tensorboardX's protos)."""

from __future__ import annotations

import struct
from pathlib import Path


def read_events(path: Path) -> list:
    """Every Event of one file (record: length u64, crc u32, data, crc u32)."""
    from tensorboardX.proto import event_pb2

    data = path.read_bytes()
    events, offset = [], 0
    while offset + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, offset)
        events.append(event_pb2.Event.FromString(data[offset + 12 : offset + 12 + length]))
        offset += 12 + length + 4
    return events


def read_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    scalars: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(log_dir.glob("events.out.tfevents.*")):
        for event in read_events(path):
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars
