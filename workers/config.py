"""Worker configuration: one pydantic model from flags, WILDROBOT_* env, then defaults."""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from wildrobot.queue import keys
from wildrobot.specs import JobKind

from .handlers import HANDLERS

ENV_PREFIX = "WILDROBOT_"


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class WorkerConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    redis_url: str = "redis://127.0.0.1:6379/0"
    artifact_dir: Path = Path(".wildrobot/artifacts")
    # Compiled XLA programs survive restarts here; default <artifact_dir>/../jax_cache.
    jax_cache_dir: Path | None = None
    # Default: every kind this worker has a handler for.
    kinds: tuple[JobKind, ...] = Field(default_factory=lambda: tuple(HANDLERS))
    # Jobs by host count: "take" any; "skip" num_hosts > 1 (GPU workers, when a launcher with
    # no GPU takes those); "only" num_hosts > 1 (that launcher: deploy/k8s/base/multihost.yaml).
    multihost: Literal["take", "skip", "only"] = "take"
    worker_id: str = Field(default_factory=default_worker_id)
    lease_s: float = Field(keys.DEFAULT_LEASE_S, gt=0)
    heartbeat_s: float = Field(keys.DEFAULT_HEARTBEAT_S, gt=0)
    poll_ms: int = Field(2000, ge=10)
    max_retries: int = Field(keys.DEFAULT_MAX_RETRIES, ge=0)
    # Seconds a runner gets to finish its iteration and checkpoint after a stop request.
    stop_grace_s: float = Field(600.0, gt=0)
    once: bool = False  # exit after one job (tests, batch schedulers)
    # Prometheus /metrics on this port (0: a free one); None serves none.
    metrics_port: int | None = Field(None, ge=0, le=65535)
    metrics_host: str = "0.0.0.0"
    log_format: Literal["text", "json"] = "text"
    # Quota: jobs of one tenant running at once across all workers (RUNNING/CANCELLING); a job
    # beyond it stays queued until one of them ends. 0: no quota.
    max_running_jobs_per_tenant: int = Field(keys.DEFAULT_MAX_RUNNING_PER_TENANT, ge=0)

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> WorkerConfig:
        if self.heartbeat_s * 2 > self.lease_s:
            raise ValueError(
                f"heartbeat_s ({self.heartbeat_s}) must be at most half of lease_s ({self.lease_s})"
            )
        return self

    @property
    def cache_dir(self) -> Path:
        return self.jax_cache_dir or self.artifact_dir.resolve().parent / "jax_cache"


def load_config(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> WorkerConfig:
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {
        name: environ[ENV_PREFIX + name.upper()]
        for name in WorkerConfig.model_fields
        if ENV_PREFIX + name.upper() in environ and name != "kinds"
    }
    parser = argparse.ArgumentParser(prog="wildrobot-worker", description="WildRobot job worker")
    for name in WorkerConfig.model_fields:
        flag = "--" + name.replace("_", "-")
        if name == "once":
            parser.add_argument(flag, dest=name, action="store_true", default=None)
        elif name == "kinds":
            parser.add_argument(flag, dest=name, help="comma-separated job kinds, e.g. ppo")
        else:
            parser.add_argument(flag, dest=name)
    args = {k: v for k, v in vars(parser.parse_args(argv)).items() if v is not None}
    kinds = args.pop("kinds", environ.get(ENV_PREFIX + "KINDS"))
    if kinds:
        values["kinds"] = tuple(k.strip() for k in kinds.split(",") if k.strip())
    values.update(args)
    return WorkerConfig.model_validate(values)
