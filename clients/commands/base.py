"""What every subcommand gets: the `Command` record it registers and the `Context` it runs in."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

from rich.console import Console

from .. import config
from ..config import ADDRESS_ENV, TOKEN_ENV
from ..sdk import Client
from ..types import to_jsonable

PIPED_WIDTH = 200  # piped output (scripts, logs) is not squeezed into 80 columns


def _console(file: Any) -> Console:
    console = Console(file=file, highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console.width = PIPED_WIDTH
    return console


@dataclasses.dataclass(frozen=True)
class Command:
    """One subcommand: `configure` adds its arguments, `run` returns the exit code.

    A new subcommand is one module defining a Command, listed in commands/__init__.py."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[Context, argparse.Namespace], int]
    reads: bool = True  # read commands take --json


class Context:
    """The resolved connection settings, the SDK client (made on first use) and the consoles."""

    def __init__(self, args: argparse.Namespace, stdout: Any = None, stderr: Any = None) -> None:
        self.args = args
        self.json = bool(getattr(args, "json", False))
        self.out = _console(stdout or sys.stdout)
        self.err = _console(stderr or sys.stderr)

    @cached_property
    def config(self) -> config.ClientConfig:
        return config.resolve(
            getattr(self.args, "address", None),
            getattr(self.args, "token", None),
            tls=True if getattr(self.args, "tls", False) else None,
        )

    @cached_property
    def client(self) -> Client:
        cfg = self.config
        root = Path(cfg.ca_file).expanduser().read_bytes() if cfg.tls and cfg.ca_file else None
        return Client(
            cfg.address,
            cfg.token,
            timeout_s=getattr(self.args, "timeout", None) or 15.0,
            tls=cfg.tls,
            root_certificates=root,
        )

    def close(self) -> None:
        if "client" in self.__dict__:
            self.client.close()

    def print_json(self, value: Any) -> None:
        """One JSON document (or, for streams, one line per call) on stdout."""
        self.out.file.write(json.dumps(to_jsonable(value), sort_keys=True) + "\n")
        self.out.file.flush()


def connection_options(suppress: bool) -> argparse.ArgumentParser:
    """--address/--token/... accepted before or after the subcommand."""
    default = argparse.SUPPRESS if suppress else None
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connection")
    group.add_argument(
        "--address",
        default=default,
        help=f"host:port of the server (or ${ADDRESS_ENV}, or the config file)",
    )
    group.add_argument(
        "--token", default=default, help=f"bearer token (or ${TOKEN_ENV}, or the config file)"
    )
    group.add_argument("--tls", action="store_true", default=default, help="connect with TLS")
    group.add_argument(
        "--timeout",
        type=float,
        default=default,
        metavar="S",
        help="deadline for each call in seconds (default 15)",
    )
    return parent
