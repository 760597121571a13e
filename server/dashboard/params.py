"""Query parameters of the HTTP API: each route declares the ones it reads, with their ranges.

    @query(page_size=Int(0, MAX_PAGE_SIZE), page_token=Text())
    async def list_jobs(request, page_size, page_token): ...

A value outside its range, or not a number, is 400 INVALID_ARGUMENT naming the parameter and the
range (never a 500 or a broken stream). `declared(endpoint)` lists a route's parameters, so a
test can cover every parameter of every route.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from wildrobot.queue.keys import MAX_SEQ

from .. import errors

__all__ = ["MAX_SEQ", "Choice", "Int", "Text", "declared", "query"]
_INTEGER = re.compile(r"[+-]?[0-9]{1,40}")


@dataclass(frozen=True)
class Int:
    low: int
    high: int
    default: int | None = None

    def describe(self) -> str:
        return f"an integer in {self.low}..{self.high}"

    def parse(self, name: str, text: str | None) -> int | None:
        if text is None or text.strip() == "":
            return self.default
        text = text.strip()
        value = int(text) if _INTEGER.fullmatch(text) else None
        if value is None or not self.low <= value <= self.high:
            raise errors.InvalidArgument(f"{name}: {self.describe()}, not {text[:40]!r}", (name,))
        return value


@dataclass(frozen=True)
class Choice:
    """Enum values, case-insensitive; `many`: repeated and/or comma-separated, as a frozenset."""

    values: type[Enum]
    many: bool = False

    def describe(self) -> str:
        return "one of " + ", ".join(str(v.value) for v in self.values)

    def _one(self, name: str, text: str) -> Enum:
        for member in self.values:
            if str(member.value).lower() == text.lower():
                return member
        raise errors.InvalidArgument(f"{name}: {self.describe()}, not {text[:40]!r}", (name,))

    def parse_all(self, name: str, texts: Sequence[str]) -> Any:
        if self.many:
            names = [n for t in texts for n in t.split(",") if n]
            return frozenset(self._one(name, n) for n in names)
        text = texts[-1] if texts else ""
        return self._one(name, text) if text else None


@dataclass(frozen=True)
class Text:
    """A string the domain call checks itself (a page token)."""

    default: str = ""

    def describe(self) -> str:
        return "text"


Param = Int | Choice | Text
Endpoint = Callable[[Request], Awaitable[Response]]


def read(request: Request, name: str, param: Param) -> Any:
    if isinstance(param, Choice):
        return param.parse_all(name, request.query_params.getlist(name))
    text = request.query_params.get(name)
    if isinstance(param, Text):
        return param.default if text is None else text
    return param.parse(name, text)


def query(**params: Param) -> Callable[[Callable[..., Awaitable[Response]]], Endpoint]:
    """The route's handler gets each declared parameter, parsed and range-checked, by name."""

    def decorate(handler: Callable[..., Awaitable[Response]]) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            values = {name: read(request, name, param) for name, param in params.items()}
            return await handler(request, **values)

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        endpoint.query_params = params  # type: ignore[attr-defined]
        return endpoint

    return decorate


def declared(endpoint: object) -> dict[str, Param]:
    """The query parameters a route's endpoint declared ({} for none)."""
    return dict(getattr(endpoint, "query_params", {}))
