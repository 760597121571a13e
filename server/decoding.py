"""Request bytes -> messages without raising, so undecodable requests can be answered properly.

grpcio deserializes a request before any handler or interceptor code runs; a deserializer that
raises makes it answer UNKNOWN and log a traceback. `safe_deserializer` returns an `Undecodable`
instead, and `ErrorInterceptor` answers it INVALID_ARGUMENT naming where the bytes went wrong:

    request: not a valid wildrobot.v1.GetJobRequest message (job_id: invalid UTF-8)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor


@dataclass(frozen=True)
class Undecodable:
    """Stands in for a request whose bytes are not the expected message."""

    message: str
    field: str


class _Broken(Exception):
    def __init__(self, field: str, why: str) -> None:
        super().__init__(why)
        self.field = field
        self.why = why


def safe_deserializer(deserializer: Callable[[bytes], Any] | None) -> Callable | None:
    """`deserializer` (a generated `Message.FromString`) that returns `Undecodable` on bad bytes."""
    if deserializer is None:
        return None
    descriptor = getattr(getattr(deserializer, "__self__", None), "DESCRIPTOR", None)

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception:  # noqa: BLE001 - DecodeError, or anything a parser raises on junk
            return describe(descriptor, data)

    return deserialize


def describe(descriptor: Descriptor | None, data: bytes) -> Undecodable:
    """Why `data` is not a `descriptor` message: the first field that breaks, and how."""
    type_name = descriptor.full_name if descriptor is not None else "request"
    field, why = "request", "not protobuf wire format"
    if descriptor is not None:
        try:
            _walk(descriptor, bytes(data), "")
        except _Broken as exc:
            field, why = exc.field or "request", exc.why
    detail = why if field == "request" else f"{field}: {why}"
    return Undecodable(f"request: not a valid {type_name} message ({detail})", field)


def _varint(data: bytes, pos: int, field: str) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise _Broken(field, "truncated")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift >= 70:
            raise _Broken(field, "malformed varint")


def _walk(descriptor: Descriptor, data: bytes, prefix: str) -> None:
    """Raises _Broken naming the first field (dotted path) whose bytes cannot be decoded."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos, prefix.rstrip("."))
        number, wire_type = key >> 3, key & 7
        known = descriptor.fields_by_number.get(number)
        name = prefix + (known.name if known is not None else f"field {number}")
        if number == 0:
            raise _Broken(prefix.rstrip("."), f"field number 0 at byte {pos}")
        if wire_type == 0:
            _, pos = _varint(data, pos, name)
        elif wire_type in (1, 5):
            pos += 8 if wire_type == 1 else 4
        elif wire_type == 2:
            length, pos = _varint(data, pos, name)
            chunk = data[pos : pos + length]
            pos += length
            if len(chunk) < length:
                raise _Broken(name, "truncated")
            if known is not None:
                _check_chunk(known, chunk, name)
        else:
            raise _Broken(name, f"unsupported wire type {wire_type}")
        if pos > len(data):
            raise _Broken(name, "truncated")


def _check_chunk(field: FieldDescriptor, chunk: bytes, name: str) -> None:
    if field.type == FieldDescriptor.TYPE_STRING:
        try:
            chunk.decode("utf-8")
        except UnicodeDecodeError:
            raise _Broken(name, "invalid UTF-8") from None
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        _walk(field.message_type, chunk, name + ".")
