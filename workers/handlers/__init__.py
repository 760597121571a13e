"""Job handlers, one per job kind: a plain function `(context, spec) -> HandlerResult`.

The registry maps a kind to "module:function" so that looking a handler up imports nothing heavy
(the supervisor never imports JAX; only the runner process calls `get_handler`). A new job kind
is one module here plus one entry in HANDLERS.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from wildrobot.specs import JobKind

HANDLERS: dict[JobKind, str] = {
    JobKind.PPO: "wildrobot.workers.handlers.ppo:run",
    JobKind.AMP: "wildrobot.workers.handlers.amp:run",
    JobKind.INVERSE_DYNAMICS: "wildrobot.workers.handlers.inverse_dynamics:run",
    JobKind.TTA_EVAL: "wildrobot.workers.handlers.tta_eval:run",
    JobKind.MAML: "wildrobot.workers.handlers.maml:run",
}


class JobError(RuntimeError):
    """An error in the job itself (bad data, impossible config): FAILED, never retried."""


class Publisher(Protocol):
    def metrics(self, step: int, values: dict[str, float]) -> None: ...

    def checkpoint(self, step: int, path: Path, best: bool = False) -> None: ...

    def log(self, level: str, message: str) -> None: ...


@dataclass(frozen=True)
class JobContext:
    """What a handler gets besides its spec. Writes through `publish` are fenced."""

    job_id: str
    attempt: int
    run_dir: Path  # <artifact_dir>/<job_id>/attempt-<n> (workers.layout): this attempt's own
    resume_from: Path | None  # the last registered checkpoint of an earlier attempt
    publish: Publisher
    should_stop: Callable[[], bool]
    redis_url: str = ""  # for work the handler starts elsewhere (multi-host) to publish fenced
    worker_id: str = ""
    tenant: str = ""  # the job's tenant (its inputs are <artifact_dir>/tenants/<tenant>/inputs)


@dataclass(frozen=True)
class HandlerResult:
    final_step: int
    stopped: bool  # True when should_stop() ended it early


Handler = Callable[[JobContext, Any], HandlerResult]


def get_handler(kind: JobKind | str) -> Handler:
    target = HANDLERS.get(JobKind(kind))
    if target is None:
        raise JobError(f"no handler for job kind {kind!r} on this worker")
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)
