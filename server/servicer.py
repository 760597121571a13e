"""JobService servicer: proto in, one call into a domain service, proto out."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from grpc import aio

from wildrobot import convert
from wildrobot.queue.records import JobRecord
from wildrobot.v1 import jobs_pb2, jobs_pb2_grpc

from . import errors, messages, watch
from .artifacts import CheckpointService
from .interceptors import current_tenant
from .jobs import JobService
from .uploads import (
    KIND_TO_PROTO,
    UploadStore,
    file_chunks,
    find_job_file,
    job_files,
)
from .watch import WatchHub


class JobServicer(jobs_pb2_grpc.JobServiceServicer):
    def __init__(
        self,
        jobs: JobService,
        checkpoints: CheckpointService,
        hub: WatchHub,
        uploads: UploadStore,
        artifact_dir: Path,
        chunk_bytes: int,
    ) -> None:
        self._jobs = jobs
        self._checkpoints = checkpoints
        self._hub = hub
        self._uploads = uploads
        self._artifact_dir = artifact_dir
        self._chunk_bytes = chunk_bytes

    async def SubmitJob(
        self, request: jobs_pb2.SubmitJobRequest, context: aio.ServicerContext
    ) -> jobs_pb2.SubmitJobResponse:
        result = await self._jobs.submit(
            current_tenant(),
            request.spec,
            request_id=request.request_id,
            validate_only=request.validate_only,
            name=request.name,
        )
        return jobs_pb2.SubmitJobResponse(
            job=messages.job_to_proto(result.record), created=result.created
        )

    async def GetJob(
        self, request: jobs_pb2.GetJobRequest, context: aio.ServicerContext
    ) -> jobs_pb2.Job:
        return messages.job_to_proto(await self._jobs.get(current_tenant(), request.job_id))

    async def ListJobs(
        self, request: jobs_pb2.ListJobsRequest, context: aio.ServicerContext
    ) -> jobs_pb2.ListJobsResponse:
        kind, states = messages.list_filters(request)
        jobs, token = await self._jobs.list(
            current_tenant(),
            kind=kind,
            states=states,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return jobs_pb2.ListJobsResponse(
            jobs=[messages.job_to_proto(j) for j in jobs], next_page_token=token
        )

    async def CancelJob(
        self, request: jobs_pb2.CancelJobRequest, context: aio.ServicerContext
    ) -> jobs_pb2.CancelJobResponse:
        record = await self._jobs.cancel(current_tenant(), request.job_id)
        return jobs_pb2.CancelJobResponse(job=messages.job_to_proto(record))

    async def WatchJob(
        self, request: jobs_pb2.WatchJobRequest, context: aio.ServicerContext
    ) -> AsyncIterator[jobs_pb2.JobEvent]:
        events = watch.watch(
            self._jobs, self._hub, current_tenant(), request.job_id, request.since_seq
        )
        async with contextlib.aclosing(events):  # a closed stream frees its watch slot now
            async for item in events:
                if isinstance(item, JobRecord):
                    yield messages.snapshot_event(item)
                else:
                    yield messages.event_to_proto(item)

    async def ListCheckpoints(
        self, request: jobs_pb2.ListCheckpointsRequest, context: aio.ServicerContext
    ) -> jobs_pb2.ListCheckpointsResponse:
        infos = await self._checkpoints.list(current_tenant(), request.job_id)
        return jobs_pb2.ListCheckpointsResponse(
            checkpoints=[messages.checkpoint_to_proto(i) for i in infos]
        )

    async def DownloadCheckpoint(
        self, request: jobs_pb2.DownloadCheckpointRequest, context: aio.ServicerContext
    ) -> AsyncIterator[jobs_pb2.CheckpointChunk]:
        step = _step_or_best(request)
        info, chunks = await self._checkpoints.download(
            current_tenant(), request.job_id, step, best=request.best
        )
        first = True
        async for data in chunks:
            chunk = jobs_pb2.CheckpointChunk(data=data)
            if first:
                chunk.info.CopyFrom(messages.checkpoint_to_proto(info))
                first = False
            yield chunk

    async def DownloadArtifact(
        self, request: jobs_pb2.DownloadArtifactRequest, context: aio.ServicerContext
    ) -> AsyncIterator[jobs_pb2.ArtifactChunk]:
        if request.name:
            async for chunk in self._named_file(request.job_id, request.name):
                yield chunk
            return
        kind = convert.artifact_kind_from_proto(request.kind)
        if kind is None:
            raise errors.InvalidArgument("kind: give an artifact kind (onnx or video)", ("kind",))
        step = _step_or_best(request)
        info, path, chunks = await self._checkpoints.artifact(
            current_tenant(), request.job_id, step, kind, best=request.best
        )
        first = jobs_pb2.ArtifactChunk(
            info=messages.checkpoint_to_proto(info), name=path.name, size_bytes=path.stat().st_size
        )
        async for chunk in _headed(first, chunks):
            yield chunk

    async def _named_file(self, job_id: str, name: str) -> AsyncIterator[jobs_pb2.ArtifactChunk]:
        file = await find_job_file(
            self._checkpoints, self._artifact_dir, current_tenant(), job_id, name
        )
        first = jobs_pb2.ArtifactChunk(name=file.name, size_bytes=file.size_bytes)
        first.info.step = file.step
        async for chunk in _headed(first, file_chunks(file.path, self._chunk_bytes)):
            yield chunk

    async def ListArtifacts(
        self, request: jobs_pb2.ListArtifactsRequest, context: aio.ServicerContext
    ) -> jobs_pb2.ListArtifactsResponse:
        files = await job_files(self._checkpoints, self._artifact_dir, current_tenant(),
                                request.job_id)
        return jobs_pb2.ListArtifactsResponse(
            artifacts=[
                jobs_pb2.ArtifactInfo(name=f.name, kind=KIND_TO_PROTO[f.kind],
                                      size_bytes=f.size_bytes, step=f.step)
                for f in files
            ]
        )

    async def UploadTrial(
        self, request_iterator: AsyncIterator[jobs_pb2.UploadChunk], context: aio.ServicerContext
    ) -> jobs_pb2.UploadInfo:
        upload = await self._uploads.save(current_tenant(), request_iterator)
        return jobs_pb2.UploadInfo(
            name=upload.name, size_bytes=upload.size_bytes, sha256=upload.sha256
        )

    async def ListUploads(
        self, request: jobs_pb2.ListUploadsRequest, context: aio.ServicerContext
    ) -> jobs_pb2.ListUploadsResponse:
        return jobs_pb2.ListUploadsResponse(
            uploads=[
                jobs_pb2.UploadInfo(name=u.name, size_bytes=u.size_bytes)
                for u in self._uploads.list(current_tenant())
            ]
        )


async def _headed(
    first: jobs_pb2.ArtifactChunk, chunks: AsyncIterator[bytes]
) -> AsyncIterator[jobs_pb2.ArtifactChunk]:
    """`chunks` as ArtifactChunks, the first carrying `first`'s fields (what the file is).

    An empty file still yields `first`, so the client learns what it got.
    """
    header: jobs_pb2.ArtifactChunk | None = first
    async for data in chunks:
        if header is not None:
            header.data = data
            yield header
            header = None
        else:
            yield jobs_pb2.ArtifactChunk(data=data)
    if header is not None:
        yield header


def _step_or_best(
    request: jobs_pb2.DownloadCheckpointRequest | jobs_pb2.DownloadArtifactRequest,
) -> int | None:
    """The asked step (None: latest); `best` and `step` together are refused."""
    if request.best and request.HasField("step"):
        raise errors.InvalidArgument("best: give a step or best, not both", ("best", "step"))
    return request.step if request.HasField("step") else None
