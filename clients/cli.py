"""`wildrobot-client`: submit, follow and fetch WildRobot training jobs.

Exit codes: 0 ok; 1 the watched job did not succeed; 2 usage; 3 server unreachable or too slow;
4 token refused; 5 invalid spec or request; 6 unknown job or checkpoint; 7 any other server error.
Errors print one line a person can act on, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from . import errors
from .commands import COMMANDS, Context
from .commands.base import connection_options
from .config import ConfigError, config_path
from .parsing import UsageError

EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_AUTH = 4
EXIT_INVALID = 5
EXIT_NOT_FOUND = 6
EXIT_ERROR = 7

_EXIT_BY_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (errors.ServerUnreachable, EXIT_UNREACHABLE),
    (errors.DeadlineExceeded, EXIT_UNREACHABLE),
    (errors.AuthError, EXIT_AUTH),
    (errors.InvalidSpec, EXIT_INVALID),
    (errors.InvalidRequest, EXIT_INVALID),
    (errors.JobNotFound, EXIT_NOT_FOUND),
    (errors.CheckpointNotFound, EXIT_NOT_FOUND),
    (errors.ExportNotFound, EXIT_NOT_FOUND),
    (errors.ClientError, EXIT_ERROR),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wildrobot-client",
        description="Submit, watch and download WildRobot training jobs.",
        epilog=(
            f'config file: {config_path()} (address = "...", token = "..."). Exit codes: '
            "0 ok, 1 watched job did not succeed, 2 usage, 3 server unreachable, 4 token refused, "
            "5 invalid spec or request, 6 unknown job or checkpoint, 7 other server error."
        ),
        parents=[connection_options(suppress=False)],
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        sub = commands.add_parser(
            command.name,
            help=command.help,
            description=command.help,
            parents=[connection_options(suppress=True)],
        )
        command.configure(sub)
        if command.reads:
            sub.add_argument("--json", action="store_true", help="print JSON for scripts")
        sub.set_defaults(run=command.run)
    return parser


def _message(exc: Exception) -> tuple[str, int]:
    if isinstance(exc, errors.InvalidSpec):
        lines = [f"  {field}: {rule}" if field else f"  {rule}" for field, rule in exc.violations]
        return "invalid spec:\n" + "\n".join(lines), EXIT_INVALID
    for error_type, code in _EXIT_BY_ERROR:
        if isinstance(exc, error_type):
            return str(exc), code
    return str(exc), EXIT_USAGE


def main(
    argv: list[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    args = build_parser().parse_args(argv)
    ctx = Context(args, stdout=stdout, stderr=stderr)
    try:
        return args.run(ctx, args)
    except (errors.ClientError, UsageError, ConfigError) as exc:
        text, code = _message(exc)
        if isinstance(exc, errors.AuthError) and not ctx.config.token:
            text = f"no token given: set --token, WILDROBOT_TOKEN or token in {config_path()}"
        ctx.err.print(f"[red]error:[/] {text}", markup=True, highlight=False)
        return code
    except KeyboardInterrupt:
        ctx.err.print("interrupted (a submitted job keeps running; stop it with `cancel JOB`)")
        return 130
    except BrokenPipeError:
        return 0
    finally:
        ctx.close()


if __name__ == "__main__":
    sys.exit(main())
