"""`wildrobot`: operator commands (`wildrobot up` runs the local stack)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["up"]:
        from .stack import up

        return up(args[1:])
    print(
        "usage: wildrobot up [--dir DIR] [--port PORT] [--http-port PORT] [--redis-port PORT] "
        "[--redis-maxmemory SIZE] [--workers N] [--log-format text|json]",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
