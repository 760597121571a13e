"""The `wildrobot-client` subcommands, in the order `--help` lists them.

Adding one: a module with a `Command` (name, help, configure(parser), run(ctx, args) -> exit
code) and one line below."""

from . import (
    checkpoints,
    dynamics,
    exports,
    files,
    jobs,
    report,
    submit,
    watch,
)
from .base import Command, Context

COMMANDS: tuple[Command, ...] = (
    submit.COMMAND,
    jobs.STATUS,
    jobs.LIST,
    watch.COMMAND,
    jobs.CANCEL,
    checkpoints.CHECKPOINTS,
    checkpoints.DOWNLOAD,
    files.ARTIFACTS,
    files.UPLOAD,
    exports.EXPORT,
    exports.VIDEO,
    dynamics.COMMAND,
    report.COMMAND,
)

__all__ = ["COMMANDS", "Command", "Context"]
