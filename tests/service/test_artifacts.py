"""DownloadArtifact over the real server and Redis: a registered checkpoint's exported files."""

from __future__ import annotations

import json
import os

import grpc
import pytest
import redis

from tests.service.test_api import code_of, submit
from wildrobot import exports
from wildrobot.queue import keys
from wildrobot.v1 import jobs_pb2

pytestmark = [pytest.mark.redis, pytest.mark.integration]


def register_checkpoint(service, job_id: str, step: int, best: bool = False) -> os.PathLike:
    """A checkpoint folder in the artifact store, registered the way the worker does."""
    rel = f"{job_id}/checkpoints/{step:012d}"
    (service.artifact_dir / rel).mkdir(parents=True)
    record = {"step": step, "attempt": 1, "size_bytes": 10, "created_at_ms": 1, "path": rel}
    if best:
        record["best"] = True
    client = redis.Redis.from_url(service.redis_url, decode_responses=True)
    try:
        client.hset(keys.checkpoints(job_id), str(step), json.dumps(record))
    finally:
        client.close()
    return service.artifact_dir / rel


def download(stub, job_id: str, kind: int, step: int | None = None, best: bool = False) -> list:
    request = jobs_pb2.DownloadArtifactRequest(job_id=job_id, kind=kind, best=best)
    if step is not None:
        request.step = step
    return list(stub.DownloadArtifact(request))


def test_download_artifact_streams_the_exported_file(service) -> None:
    stub = service.stub("alice")
    job_id = submit(stub).job.job_id
    first = register_checkpoint(service, job_id, 100)
    latest = register_checkpoint(service, job_id, 200)
    payload = os.urandom(40 * 1024 + 7)  # three chunks of the test server's 16 KiB
    path = exports.artifact_path(latest, exports.ArtifactKind.ONNX)
    path.parent.mkdir()
    path.write_bytes(payload)

    chunks = download(stub, job_id, jobs_pb2.ARTIFACT_KIND_ONNX)
    assert len(chunks) == 3
    assert chunks[0].name == "policy.onnx" and chunks[0].size_bytes == len(payload)
    assert chunks[0].info.step == 200 and not chunks[1].HasField("info")
    assert b"".join(c.data for c in chunks) == payload

    with pytest.raises(grpc.RpcError) as err:  # the first checkpoint has no exports
        download(stub, job_id, jobs_pb2.ARTIFACT_KIND_ONNX, step=100)
    assert code_of(err) == grpc.StatusCode.NOT_FOUND
    assert "no onnx export for the checkpoint at step 100" in err.value.details()
    assert first.is_dir()
    with pytest.raises(grpc.RpcError) as err:
        download(stub, job_id, jobs_pb2.ARTIFACT_KIND_VIDEO)
    assert code_of(err) == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        download(stub, job_id, jobs_pb2.ARTIFACT_KIND_UNSPECIFIED)
    assert code_of(err) == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as err:  # another tenant's job does not exist for bob
        download(service.stub("bob"), job_id, jobs_pb2.ARTIFACT_KIND_ONNX)
    assert code_of(err) == grpc.StatusCode.NOT_FOUND
    assert job_id in err.value.details()


def test_download_artifact_refuses_a_link_out_of_the_store(service, tmp_path) -> None:
    stub = service.stub("alice")
    job_id = submit(stub).job.job_id
    checkpoint = register_checkpoint(service, job_id, 100)
    secret = tmp_path / "secret"
    secret.write_bytes(b"not yours")
    (checkpoint / exports.EXPORTS_DIR).mkdir()
    exports.artifact_path(checkpoint, "onnx").symlink_to(secret)
    with pytest.raises(grpc.RpcError) as err:
        download(stub, job_id, jobs_pb2.ARTIFACT_KIND_ONNX)
    assert code_of(err) == grpc.StatusCode.NOT_FOUND


def test_best_resolves_to_the_newest_checkpoint_registered_as_best(service) -> None:
    stub = service.stub("alice")
    job_id = submit(stub).job.job_id
    register_checkpoint(service, job_id, 100, best=True)
    with pytest.raises(grpc.RpcError) as err:  # the best has no export yet
        download(stub, job_id, jobs_pb2.ARTIFACT_KIND_ONNX, best=True)
    assert code_of(err) == grpc.StatusCode.NOT_FOUND
    assert "step 100" in err.value.details()
    best = register_checkpoint(service, job_id, 200, best=True)
    register_checkpoint(service, job_id, 300)  # the latest, not a best
    exports.artifact_path(best, exports.ArtifactKind.ONNX).parent.mkdir()
    exports.artifact_path(best, exports.ArtifactKind.ONNX).write_bytes(b"best policy")

    listed = stub.ListCheckpoints(jobs_pb2.ListCheckpointsRequest(job_id=job_id)).checkpoints
    assert [(c.step, c.best) for c in listed] == [(100, False), (200, True), (300, False)]
    chunks = download(stub, job_id, jobs_pb2.ARTIFACT_KIND_ONNX, best=True)
    assert chunks[0].info.step == 200 and chunks[0].info.best
    assert b"".join(c.data for c in chunks) == b"best policy"
    request = jobs_pb2.DownloadCheckpointRequest(job_id=job_id, best=True)
    assert next(iter(stub.DownloadCheckpoint(request))).info.step == 200
    latest = jobs_pb2.DownloadCheckpointRequest(job_id=job_id)
    assert next(iter(stub.DownloadCheckpoint(latest))).info.step == 300
    for bad in (
        jobs_pb2.DownloadCheckpointRequest(job_id=job_id, best=True, step=200),
        jobs_pb2.DownloadArtifactRequest(
            job_id=job_id, best=True, step=200, kind=jobs_pb2.ARTIFACT_KIND_ONNX
        ),
    ):
        call = (
            stub.DownloadCheckpoint
            if isinstance(bad, jobs_pb2.DownloadCheckpointRequest)
            else stub.DownloadArtifact
        )
        with pytest.raises(grpc.RpcError) as err:
            list(call(bad))
        assert code_of(err) == grpc.StatusCode.INVALID_ARGUMENT
        assert "best: give a step or best, not both" in err.value.details()


def test_best_is_not_found_without_periodic_evaluation(service) -> None:
    stub = service.stub("alice")
    job_id = submit(stub).job.job_id
    register_checkpoint(service, job_id, 100)
    request = jobs_pb2.DownloadCheckpointRequest(job_id=job_id, best=True)
    with pytest.raises(grpc.RpcError) as err:
        list(stub.DownloadCheckpoint(request))
    assert code_of(err) == grpc.StatusCode.NOT_FOUND
    assert "has no best checkpoint" in err.value.details() and "eval_every" in err.value.details()
