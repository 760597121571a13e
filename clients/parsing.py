"""What people type, parsed: human-friendly counts (`200M`, `1e8`, `4k`) and `--set key=value`.

Values are coerced by the type the spec declares for the field, so `--set batch_size=1k` and
`--set policy_hidden_sizes=512,256` work without a table of per-field parsers.
"""

from __future__ import annotations

import difflib
import json
import re
import types
import typing
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel

_SUFFIXES = {"k": 10**3, "m": 10**6, "g": 10**9, "b": 10**9, "t": 10**12}
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_INT = re.compile(r"^[+-]?(\d[\d_]*|\d+(\.\d+)?[kKmMgGbBtT])$")
ENV_OVERRIDES = "env_overrides"


class UsageError(ValueError):
    """A value or option the user typed does not parse; the message says what was expected."""


def parse_count(text: str) -> int:
    """An exact non-negative integer from `4096`, `4k`, `200M`, `1.5B`, `1e8` or `10_000`.

    Suffixes are decimal (k = 1e3, M = 1e6, G/B = 1e9, T = 1e12), case-insensitive.
    Raises UsageError for anything that is not a whole number.
    """
    raw = text.strip().replace("_", "").replace(",", "")
    multiplier = 1
    if raw and raw[-1].lower() in _SUFFIXES:
        multiplier = _SUFFIXES[raw[-1].lower()]
        raw = raw[:-1]
    try:
        value = Decimal(raw) * multiplier
    except InvalidOperation:
        raise UsageError(f"{text!r} is not a number (examples: 4096, 4k, 200M, 1e8)") from None
    if not value.is_finite() or value != value.to_integral_value():
        raise UsageError(f"{text!r} is not a whole number")
    if value < 0:
        raise UsageError(f"{text!r} is negative")
    return int(value)


def parse_step(text: str) -> int | str | None:
    """A checkpoint's step: "latest" -> None, "best" -> "best", else a count (parse_count)."""
    word = text.strip().lower()
    if word == "latest":
        return None
    if word == "best":
        return "best"
    try:
        return parse_count(text)
    except UsageError as exc:
        raise UsageError(f"{exc} (or 'latest' or 'best')") from None


def parse_float(text: str) -> float:
    try:
        return float(text.strip().replace("_", ""))
    except ValueError:
        raise UsageError(f"{text!r} is not a number") from None


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise UsageError(f"{text!r} is not true/false")


def parse_override(text: str) -> Any:
    """An env override value: a range `lo,hi` (or `[lo, hi]`) of two numbers, else a scalar."""
    stripped = text.strip()
    if "," in stripped:
        parts = [part for part in stripped.strip("[]()").split(",") if part.strip()]
        return tuple(parse_scalar(part) for part in parts)
    return parse_scalar(text)


def parse_scalar(text: str) -> bool | int | float | str:
    """An env override value: true/false, an integer (`4k` too), a float, else the string."""
    stripped = text.strip()
    if stripped.lower() in ("true", "false"):
        return stripped.lower() == "true"
    if _INT.match(stripped):
        sign = -1 if stripped.startswith("-") else 1
        return sign * parse_count(stripped.lstrip("+-"))
    try:
        return float(stripped)
    except ValueError:
        return text


def coerce_field(spec_cls: type[BaseModel], name: str, text: str) -> Any:
    """`text` as the Python type `spec_cls` declares for field `name`."""
    annotation = spec_cls.model_fields[name].annotation
    try:
        return _coerce(annotation, text)
    except UsageError as exc:
        raise UsageError(f"{name}: {exc}") from None


def _coerce(annotation: Any, text: str) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    origin = typing.get_origin(annotation)
    if annotation is bool:
        return parse_bool(text)
    if annotation is int:
        return parse_count(text)
    if annotation is float:
        return parse_float(text)
    if origin in (tuple, list):
        (item,) = typing.get_args(annotation)[:1]
        stripped = text.strip().strip("[]()")
        return tuple(_coerce(item, part) for part in stripped.split(",") if part.strip())
    if origin is typing.Literal or annotation is str:
        return text.strip()
    if origin in (typing.Union, types.UnionType):
        return parse_scalar(text)
    raise UsageError(f"cannot be set from the command line (type {annotation})")


def parse_assignments(spec_cls: type[BaseModel], items: Iterable[str]) -> dict[str, Any]:
    """Spec fields from `--set key=value` items; `env_overrides.<dotted.key>=value` collects
    into the env_overrides mapping. Raises UsageError naming the key (with a suggestion)."""
    settable = [n for n in spec_cls.model_fields if n not in ("kind", ENV_OVERRIDES)]
    fields: dict[str, Any] = {}
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise UsageError(f"--set {item!r}: expected key=value")
        if key.startswith(ENV_OVERRIDES + "."):
            overrides[key[len(ENV_OVERRIDES) + 1 :]] = parse_override(value)
        elif key in settable:
            if key in fields:
                raise UsageError(f"--set {key} given twice")
            fields[key] = coerce_field(spec_cls, key, value)
        else:
            close = difflib.get_close_matches(key, settable, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UsageError(
                f"--set {key}: not a {spec_cls.__name__} field{hint} "
                f"(environment settings go under {ENV_OVERRIDES}.<name>)"
            )
    if overrides:
        fields[ENV_OVERRIDES] = overrides
    return fields


def format_count(value: float) -> str:
    """4096 -> '4,096'; 200_000_000 -> '200M'; for progress lines."""
    for suffix, scale in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if abs(value) >= (scale if scale > 10**3 else 10**4):
            scaled = value / scale
            return f"{scaled:.0f}{suffix}" if scaled >= 100 else f"{scaled:.3g}{suffix}"
    return f"{value:,.0f}"


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True)
