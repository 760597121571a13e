"""The job domain service: submit, get, list, cancel over Redis (no gRPC here)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import redis.asyncio as aioredis
from pydantic import ValidationError

from wildrobot import convert, costs, tenant_files
from wildrobot.queue import keys, scripts
from wildrobot.queue.records import CheckpointRecord, JobRecord
from wildrobot.specs import (
    AmpSpec,
    InverseDynamicsSpec,
    JobKind,
    JobState,
    MamlSpec,
    PpoSpec,
    TtaEvalSpec,
    tta_source_problem,
)
from wildrobot.v1 import jobs_pb2

from . import errors
from .archive import JobArchive

if TYPE_CHECKING:  # uploads -> artifacts -> jobs: the store is handed in, not imported
    from .uploads import UploadStore

MAX_NAME_CHARS = 200
MAX_REQUEST_ID_CHARS = 128
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_SCANNED_PER_PAGE = 5000  # state filters scan the tenant index; a page stops after this many
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
_PAGE_TOKEN = re.compile(r"^o([0-9]{1,18})$")


@dataclass(frozen=True)
class Submitted:
    record: JobRecord
    created: bool


def steps_total(spec: PpoSpec) -> int:
    """The env steps the job will do (training rounds up to whole iterations); 0 if untimed."""
    return int(getattr(spec, "planned_timesteps", 0))


def preview(tenant: str, spec: PpoSpec, name: str) -> JobRecord:
    """What a job would look like (validate_only): no id, nothing stored."""
    return JobRecord(
        job_id="",
        tenant=tenant,
        kind=JobKind(spec.kind),
        state=JobState.PENDING,
        attempt=0,
        lost=0,
        name=name,
        spec_json=spec.model_dump_json(),
        created_at_ms=0,
        updated_at_ms=0,
        started_at_ms=None,
        finished_at_ms=None,
        steps_done=0,
        steps_total=steps_total(spec),
        steps_per_second=0.0,
    )


def check_job_id(job_id: str) -> None:
    if not job_id:
        raise errors.InvalidArgument("job_id: required", ("job_id",))
    if not _JOB_ID.match(job_id):
        # A malformed id can name no job: NOT_FOUND, as for any other unknown id (clients
        # treat both alike), with the rule it breaks.
        raise errors.NotFound(f"job {job_id[:64]!r} not found (job_id is 32 lowercase hex digits)")


def validate_submission(
    spec_msg: jobs_pb2.JobSpec, name: str, request_id: str, cost_limits: costs.CostLimits
) -> PpoSpec:
    """The spec a SubmitJob request describes; raises errors.InvalidArgument naming the field
    (and nothing else, whatever the message holds)."""
    if len(name) > MAX_NAME_CHARS:
        raise errors.InvalidArgument(f"name: at most {MAX_NAME_CHARS} characters", ("name",))
    if len(request_id) > MAX_REQUEST_ID_CHARS:
        raise errors.InvalidArgument(
            f"request_id: at most {MAX_REQUEST_ID_CHARS} characters", ("request_id",)
        )
    which = spec_msg.WhichOneof("kind") or "kind"
    try:
        spec = convert.spec_from_proto(spec_msg)
    except ValidationError as exc:
        raise errors.InvalidArgument.from_validation(exc, f"spec.{which}") from None
    except ValueError as exc:
        raise errors.InvalidArgument(str(exc), ("spec",)) from None
    if isinstance(spec, AmpSpec) and spec.num_hosts > 1:
        # Multi-host launches run the PPO trainer (workers.host); AMP has no such path yet.
        field = "spec.amp.num_hosts"
        raise errors.InvalidArgument(f"{field}: amp jobs run on one host (1)", (field,))
    if isinstance(spec, PpoSpec):  # amp too: an AmpSpec is a PpoSpec
        try:
            costs.check_cost(spec, cost_limits)
        except costs.CostLimitExceeded as exc:
            field = f"spec.{which}.{exc.field}"
            raise errors.InvalidArgument(f"{field}: {exc}", (field,)) from None
    if isinstance(spec, MamlSpec):
        try:
            costs.check_maml_cost(spec, cost_limits)
        except costs.CostLimitExceeded as exc:
            field = f"spec.maml.{exc.field}"
            raise errors.InvalidArgument(f"{field}: {exc}", (field,)) from None
    return spec


class JobService:
    """Tenant-scoped job operations; every state change is one Lua script (wildrobot.queue)."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        events_maxlen: int = keys.EVENTS_MAXLEN,
        cost_limits: costs.CostLimits | None = None,
        max_pending_per_tenant: int = keys.DEFAULT_MAX_PENDING_PER_TENANT,
        archive: JobArchive | None = None,
        artifact_dir: Path | None = None,
        uploads: UploadStore | None = None,
    ) -> None:
        self.redis = client
        # Tenants' trial inputs: inverse-dynamics jobs name them (inline bytes are stored
        # there at submit); None: such jobs are refused.
        self.uploads = uploads
        # Where tenants' uploads are (amp motions may name them); None: shipped clips only.
        self.artifact_dir = artifact_dir
        self.max_pending_per_tenant = max_pending_per_tenant
        self.archive = archive
        self._events_maxlen = events_maxlen
        self._cost_limits = cost_limits or costs.CostLimits()
        self._submit = client.register_script(scripts.SUBMIT)
        self._cancel = client.register_script(scripts.CANCEL)

    async def submit(
        self,
        tenant: str,
        spec_msg: jobs_pb2.JobSpec,
        *,
        request_id: str = "",
        validate_only: bool = False,
        name: str = "",
    ) -> Submitted:
        """SubmitJob, whole: validates the request once (fields, costs, what it refers to:
        a tta_eval source job, amp motions, inverse-dynamics inputs), stores inline trial
        bytes as uploads, then queues the job (or, validate_only, previews it)."""
        spec = validate_submission(spec_msg, name, request_id, self._cost_limits)
        if isinstance(spec, TtaEvalSpec):
            await self._check_tta_source(tenant, spec)
        if isinstance(spec, AmpSpec):
            self._check_motions(tenant, spec)
        if isinstance(spec, InverseDynamicsSpec):
            spec = self._inputs_of(tenant, spec, store=not validate_only)
        if validate_only:
            return Submitted(preview(tenant, spec, name), created=False)
        job_id = uuid.uuid4().hex
        kind = JobKind(spec.kind).value
        status, found_id = await self._submit(
            keys=[
                keys.job(job_id),
                keys.idempotency(tenant, request_id),
                keys.tenant_index(tenant),
                keys.tenant_index(tenant, kind),
                keys.queue(kind),
                keys.events(job_id),
                keys.SUBMIT_SEQ,
                keys.tenant_queued(tenant),
            ],
            args=[
                job_id,
                tenant,
                kind,
                name,
                spec.model_dump_json(),
                steps_total(spec),
                request_id,
                keys.IDEMPOTENCY_TTL_S,
                self._events_maxlen,
                keys.QUEUE_MAXLEN,
                self.max_pending_per_tenant,
            ],
        )
        if status == "quota":
            raise errors.ResourceExhausted(
                f"quota max_pending_jobs_per_tenant={self.max_pending_per_tenant} reached: "
                f"tenant {tenant!r} has {found_id} jobs waiting to run; wait for some to start "
                "or cancel some"
            )
        return Submitted(await self.get(tenant, found_id), created=status == "created")

    async def _check_tta_source(self, tenant: str, spec: TtaEvalSpec) -> None:
        """The checkpoint a tta_eval job evaluates: one of this tenant's ppo, amp or maml jobs on
        a WildRobot task (wildrobot.specs.tta_source_problem), with a registered checkpoint."""
        field = "spec.tta_eval.checkpoint_job_id"
        try:
            source = await self.get(tenant, spec.checkpoint_job_id)
        except errors.NotFound:
            raise errors.InvalidArgument(
                f"{field}: no job {spec.checkpoint_job_id} of yours", (field,)
            ) from None
        problem = tta_source_problem(source.job_id, source.kind, source.spec_json)
        if problem is not None:
            raise errors.InvalidArgument(f"{field}: {problem}", (field,))
        entries = await self.redis.hvals(keys.checkpoints(source.job_id))
        steps = sorted(CheckpointRecord.from_json(e).step for e in entries)
        if not steps:
            raise errors.FailedPrecondition(f"{field}: job {source.job_id} has no checkpoints yet")
        if spec.checkpoint_step is not None and spec.checkpoint_step not in steps:
            step_field = "spec.tta_eval.checkpoint_step"
            have = ", ".join(str(s) for s in steps[-10:])
            raise errors.InvalidArgument(
                f"{step_field}: job {source.job_id} has no checkpoint at step "
                f"{spec.checkpoint_step} (have {have})",
                (step_field,),
            )

    def _inputs_of(
        self, tenant: str, spec: InverseDynamicsSpec, *, store: bool
    ) -> InverseDynamicsSpec:
        """The spec naming its trials among the tenant's inputs (inline bytes stored there
        when `store`; only checked otherwise); NOT_FOUND for a name that is not there."""
        if self.uploads is None:
            raise errors.FailedPrecondition("inverse_dynamics jobs: this server keeps no inputs")
        if store:
            spec = self.uploads.externalize(tenant, spec)
        else:
            self.uploads.check_inline(spec)
        self.uploads.check_names(tenant, spec)
        return spec

    def _check_motions(self, tenant: str, spec: AmpSpec) -> None:
        """Every motion of an amp job is a shipped clip or one of this tenant's uploads (the
        worker resolves them the same way and also checks their contents)."""
        for index, name in enumerate(spec.motions):
            try:
                tenant_files.resolve_motion(self.artifact_dir, tenant, name)
            except ValueError as exc:
                field = f"spec.amp.motions[{index}]"
                raise errors.InvalidArgument(f"{field}: {exc}", (field,)) from None

    async def get(self, tenant: str, job_id: str) -> JobRecord:
        check_job_id(job_id)
        fields = await self.redis.hgetall(keys.job(job_id))
        if not fields and self.archive is not None:
            archived = await self.archive.read(job_id)  # retired by retention
            fields = archived.record if archived is not None else {}
        # Another tenant's job is indistinguishable from a missing one.
        if not fields or fields.get("tenant") != tenant:
            raise errors.NotFound(f"job {job_id} not found")
        return JobRecord.from_hash(fields)

    async def cancel(self, tenant: str, job_id: str) -> JobRecord:
        check_job_id(job_id)
        result = await self._cancel(
            keys=[keys.job(job_id), keys.events(job_id)], args=[tenant, self._events_maxlen]
        )
        if result[0] == "notfound":
            raise errors.NotFound(f"job {job_id} not found")
        if result[0] == "finished":
            raise errors.FailedPrecondition(f"job {job_id} already finished ({result[1]})")
        return await self.get(tenant, job_id)

    async def list(
        self,
        tenant: str,
        *,
        kind: JobKind | None = None,
        states: frozenset[JobState] = frozenset(),
        page_size: int = 0,
        page_token: str = "",
    ) -> tuple[list[JobRecord], str]:
        """Newest first. The token is the submit order of the last job looked at."""
        if not 0 <= page_size <= MAX_PAGE_SIZE:
            raise errors.InvalidArgument(f"page_size: 0..{MAX_PAGE_SIZE}", ("page_size",))
        size = page_size or DEFAULT_PAGE_SIZE
        match = _PAGE_TOKEN.match(page_token) if page_token else None
        if page_token and match is None:
            raise errors.InvalidArgument("page_token: not a token from ListJobs", ("page_token",))
        index = keys.tenant_index(tenant, kind.value if kind else None)
        upper = f"({match.group(1)}" if match else "+inf"
        jobs: list[JobRecord] = []
        scanned = 0
        while len(jobs) < size and scanned < MAX_SCANNED_PER_PAGE:
            batch = size - len(jobs) if not states else max(2 * size, 100)
            ids = await self.redis.zrevrangebyscore(
                index, upper, "-inf", start=0, num=batch, withscores=True
            )
            if not ids:
                return jobs, ""
            async with self.redis.pipeline(transaction=False) as pipe:
                for job_id, _ in ids:
                    pipe.hgetall(keys.job(job_id))
                hashes = await pipe.execute()
            for (_, order), fields in zip(ids, hashes, strict=True):
                scanned += 1
                upper = f"({int(order)}"
                # The index is only a pointer: the record itself must be this tenant's.
                if not fields or fields.get("tenant") != tenant:
                    continue
                if not states or JobState(fields["state"]) in states:
                    jobs.append(JobRecord.from_hash(fields))
                    if len(jobs) == size:
                        break
            if len(ids) < batch and len(jobs) < size:
                return jobs, ""
        return jobs, "o" + upper[1:]
