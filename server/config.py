"""Front-end configuration: one pydantic model, filled from flags, then WILDROBOT_* env, then defaults."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from wildrobot import costs
from wildrobot.queue import keys

from . import watch
from .auth import check_tenant_name

ENV_PREFIX = "WILDROBOT_"


def parse_tokens(text: str) -> dict[str, str]:
    """`token:tenant,token2:tenant2` -> {token: tenant}; raises ValueError for a bad entry or
    tenant name (`auth.TENANT_NAME`)."""
    tokens: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        token, sep, tenant = item.partition(":")
        if not sep or not token or not tenant:
            raise ValueError(f"token entry {item!r} is not token:tenant")
        tokens[token] = check_tenant_name(tenant)
    return tokens


class ServerConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(50051, ge=0, le=65535)
    redis_url: str = "redis://127.0.0.1:6379/0"
    # token -> tenant. Empty means nobody can call JobService (health and reflection still work).
    tokens: dict[str, str] = Field(default_factory=dict)
    artifact_dir: Path = Path(".wildrobot/artifacts")
    max_message_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    max_retries: int = Field(keys.DEFAULT_MAX_RETRIES, ge=0, le=100)
    reaper_interval_s: float = Field(2.0, gt=0)
    # A queue entry read but never taken for this long is re-queued by the reaper.
    orphan_after_s: float = Field(60.0, gt=0)
    health_interval_s: float = Field(2.0, gt=0)
    grace_s: float = Field(5.0, ge=0)
    watch_block_ms: int = Field(250, ge=10)
    chunk_bytes: int = Field(1024 * 1024, ge=1024)
    # InverseDynamics length buckets compiled in the background at start-up (float32 and
    # float64); () disables (tests). Health name wildrobot.v1.DynamicsService.warmup says when.
    dynamics_warm_buckets: tuple[int, ...] = (256, 512, 1024)

    @field_validator("dynamics_warm_buckets", mode="before")
    @classmethod
    def _bucket_list(cls, value: object) -> object:
        """From a flag or env var: "256,512,1024" ("" disables)."""
        if isinstance(value, str):
            return tuple(int(v) for v in value.split(",") if v.strip())
        return value
    redis_pool_size: int = Field(64, ge=1)
    # What one job may cost (wildrobot.costs); raise them for bigger machines.
    max_env_steps_per_iteration: int = Field(costs.DEFAULT_MAX_ENV_STEPS_PER_ITERATION, ge=1)
    max_eval_env_steps: int = Field(costs.DEFAULT_MAX_EVAL_ENV_STEPS, ge=1)
    max_substeps: int = Field(costs.DEFAULT_MAX_SUBSTEPS, ge=1)
    # Hosts (spec.num_hosts) one job may start; raise it only with the GPU pool for them.
    max_hosts: int = Field(costs.DEFAULT_MAX_HOSTS, ge=1, le=costs.MAX_HOSTS)
    # The dashboard (HTTP/JSON API, Server-Sent Events and the page) on `host`, in this process.
    http_port: int = Field(8080, ge=0, le=65535)
    dashboard: bool = True
    sse_keepalive_s: float = Field(15.0, gt=0)
    # TLS when both are set (PEM files); plaintext otherwise (loopback, or TLS at the proxy).
    # The dashboard serves HTTPS with the same pair.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # Prometheus /metrics on this port (0: a free one); None serves none.
    metrics_port: int | None = Field(None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"  # like host: 0.0.0.0 (or a pod IP) to be scraped from elsewhere
    metrics_interval_s: float = Field(
        5.0, gt=0
    )  # how often jobs by state / queue depth are sampled
    # HTTP/2 pings a client may send on an idle connection (a quiet WatchJob): no closer than
    # this. The SDK pings every 60 s (clients.sdk keepalive_time_ms); grpc's own 5-minute
    # default would answer it with GOAWAY too_many_pings. Keep it below the SDK's interval.
    min_client_ping_interval_s: float = Field(30.0, gt=0)
    log_format: Literal["text", "json"] = "text"
    # Retention: finished jobs are archived to <artifact_dir>/<job_id>/archive.json and their
    # Redis keys deleted this long after they finished; 0 keeps them in Redis forever.
    finished_job_ttl_s: float = Field(keys.FINISHED_JOB_TTL_S, ge=0)
    # Quota: jobs of one tenant waiting to run (PENDING/RECOVERING); a submit beyond it gets
    # RESOURCE_EXHAUSTED. 0: no quota. (The running quota is the workers' setting.)
    max_pending_jobs_per_tenant: int = Field(keys.DEFAULT_MAX_PENDING_PER_TENANT, ge=0)
    # WatchJob: open watches per tenant on this front end, and events one watch may hold for a
    # slow reader before it is ended with RESOURCE_EXHAUSTED (reconnect with since_seq).
    max_watches_per_tenant: int = Field(watch.DEFAULT_MAX_WATCHES_PER_TENANT, ge=1)
    watch_queue_events: int = Field(watch.DEFAULT_QUEUE_EVENTS, ge=1)

    @property
    def cost_limits(self) -> costs.CostLimits:
        return costs.CostLimits(
            max_env_steps_per_iteration=self.max_env_steps_per_iteration,
            max_eval_env_steps=self.max_eval_env_steps,
            max_substeps=self.max_substeps,
            max_hosts=self.max_hosts,
        )

    @model_validator(mode="after")
    def _tls_pair(self) -> ServerConfig:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        return self

    @field_validator("tokens", mode="before")
    @classmethod
    def _tokens_from_text(cls, value: object) -> object:
        return parse_tokens(value) if isinstance(value, str) else value

    @field_validator("tokens")
    @classmethod
    def _valid_tenants(cls, value: dict[str, str]) -> dict[str, str]:
        for tenant in value.values():
            check_tenant_name(tenant)
        return value


def _env_defaults(environ: Mapping[str, str]) -> dict[str, str]:
    names = ServerConfig.model_fields
    return {
        name: environ[ENV_PREFIX + name.upper()]
        for name in names
        if ENV_PREFIX + name.upper() in environ
    }


def load_config(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> ServerConfig:
    """Flags (`--redis-url ...`) override WILDROBOT_REDIS_URL-style env vars, which override defaults.

    Tokens: `--tokens-file`/WILDROBOT_TOKENS_FILE or WILDROBOT_TOKENS; `--tokens` works but puts
    the secrets on the command line.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, object] = dict(_env_defaults(environ))
    parser = argparse.ArgumentParser(prog="wildrobot-server", description="WildRobot job service")
    for name, info in ServerConfig.model_fields.items():
        parser.add_argument("--" + name.replace("_", "-"), dest=name, help=info.description)
    parser.add_argument(
        "--tokens-file",
        help="file with one `token:tenant` per line (or WILDROBOT_TOKENS_FILE); keeps tokens "
        "out of the command line, which `ps` shows to every user",
    )
    args = vars(parser.parse_args(argv))
    tokens_file = args.pop("tokens_file")
    if tokens_file is None and args.get("tokens") is None:  # a flag beats the environment
        tokens_file = environ.get(ENV_PREFIX + "TOKENS_FILE")
    values.update({k: v for k, v in args.items() if v is not None})
    if tokens_file:
        values["tokens"] = ",".join(Path(tokens_file).read_text().split())
    return ServerConfig.model_validate(values)
