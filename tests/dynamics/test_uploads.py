"""Trial uploads as tenant-scoped files (UploadTrial, streamed, up to the documented 16 MiB), jobs
that reference them by name (no bulk in the job record), and a job's files listed and
downloaded by name, each tenant seeing only its own."""

from __future__ import annotations

import io
import json

import grpc
import numpy as np
import pytest
import redis

from tests.live_service import TOKEN_OF, service  # noqa: F401 - fixture
from wildrobot.clients import Client
from wildrobot.clients.cli import main
from wildrobot.queue import keys
from wildrobot.specs import MAX_ID_UPLOAD_BYTES
from wildrobot.v1 import jobs_pb2

pytestmark = pytest.mark.redis


def _client(service, tenant="alice"):  # noqa: F811
    return Client(service.address, TOKEN_OF[tenant])


def _npz_like(size: int, seed: int = 0) -> bytes:
    """Bytes of exactly `size` (an upload is stored as sent; the worker reads it later)."""
    return b"PK\x03\x04" + np.random.default_rng(seed).bytes(size - 4)


def _submit(stub, **fields):
    spec = jobs_pb2.JobSpec(inverse_dynamics=jobs_pb2.InverseDynamicsSpec(**fields))
    return stub.SubmitJob(jobs_pb2.SubmitJobRequest(spec=spec)).job


def test_an_upload_of_the_documented_limit_fits_and_one_byte_more_does_not(service):  # noqa: F811
    # The test server's messages are 256 KiB: the stream is what lets 16 MiB through.
    with _client(service) as client:
        info = client.upload_trial(_npz_like(MAX_ID_UPLOAD_BYTES), "lab/big.npz")
        assert info["name"] == "lab/big.npz" and info["size_bytes"] == MAX_ID_UPLOAD_BYTES
        with pytest.raises(Exception) as too_big:
            client.upload_trial(_npz_like(MAX_ID_UPLOAD_BYTES + 1), "lab/bigger.npz")
        assert [u["name"] for u in client.list_uploads()] == ["lab/big.npz"]
    cause = too_big.value.__cause__
    assert cause.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert cause.details().startswith("data: more than 16777216 bytes (16 MiB)")
    stored = service.artifact_dir / "tenants" / "alice" / "inputs" / "lab"
    assert sorted(p.name for p in stored.iterdir()) == ["big.npz"]  # nothing partial is kept


def test_non_npz_uploads_name_the_field_and_rule(service) -> None:  # noqa: F811
    with _client(service) as client, pytest.raises(Exception) as info:
        client.upload_trial(b"\x80\x04 a pickle, not an npz", "p.npz")
    assert info.value.__cause__.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.__cause__.details() == (
        "data: is not an .npz file (an .npz is a zip archive of named arrays)"
    )
    with pytest.raises(grpc.RpcError) as inline:
        _submit(service.stub("alice"), trials_npz=[b"PK\x03\x04 ok", b"\x80\x04 pickle"])
    assert inline.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert inline.value.details().startswith("spec.inverse_dynamics.trials_npz[1]: is not an .npz")


def test_bad_upload_names_are_refused(service) -> None:  # noqa: F811
    with _client(service) as client:
        for name in ("../escape.npz", "/abs.npz", "lab/x.pkl"):
            with pytest.raises(Exception) as info:
                client.upload_trial(b"PK\x03\x04", name)
            assert info.value.__cause__.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert info.value.__cause__.details().startswith("name: ")


def test_jobs_hold_names_not_bytes(service) -> None:  # noqa: F811
    stub = service.stub("alice")
    with _client(service) as client:
        for i in range(2):
            client.upload_trial(_npz_like(3 * 2**20, seed=i), f"walk{i}.npz")
    for _ in range(3):
        job = _submit(stub, trial_names=["walk0.npz", "walk1.npz"])
    assert job.ByteSize() < 4096
    listed = stub.ListJobs(jobs_pb2.ListJobsRequest(page_size=50))
    assert len(listed.jobs) == 3 and listed.ByteSize() < 16384
    # Inline bytes are stored as the tenant's uploads and the spec names them instead.
    inline = _submit(stub, trials_npz=[b"PK\x03\x04 small trial"])
    got = stub.GetJob(jobs_pb2.GetJobRequest(job_id=inline.job_id))
    assert not got.spec.inverse_dynamics.trials_npz
    (name,) = got.spec.inverse_dynamics.trial_names
    assert name.startswith("uploads/sha256-")
    stored = service.artifact_dir / "tenants" / "alice" / "inputs" / name
    assert stored.read_bytes() == b"PK\x03\x04 small trial"
    record = redis.Redis.from_url(service.redis_url).hget(keys.job(inline.job_id), "spec")
    assert b"small trial" not in record and b"UEsDBC" not in record  # nor base64 of it


def test_a_tenant_cannot_use_or_see_another_tenants_inputs(service) -> None:  # noqa: F811
    with _client(service, "alice") as alice:
        alice.upload_trial(b"PK\x03\x04 alice's trial", "private/walk.npz")
    with _client(service, "bob") as bob:
        assert bob.list_uploads() == []
    with pytest.raises(grpc.RpcError) as info:
        _submit(service.stub("bob"), trial_names=["private/walk.npz"])
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert "trial_names[0]: 'private/walk.npz' is not among your uploaded inputs" in (
        info.value.details()
    )
    assert _submit(service.stub("alice"), trial_names=["private/walk.npz"]).job_id


def _register(service, job_id: str, rel: str, step: int) -> None:  # noqa: F811
    """What the worker's fenced publish.checkpoint leaves in Redis."""
    record = {"step": step, "attempt": 1, "size_bytes": 0, "created_at_ms": 0, "path": rel}
    redis.Redis.from_url(service.redis_url).hset(
        keys.checkpoints(job_id), str(step), json.dumps(record)
    )


def test_a_jobs_outputs_are_listed_and_downloaded_by_their_tenant_only(service, tmp_path):  # noqa: F811
    with _client(service) as client:
        client.upload_trial(b"PK\x03\x04", "t.npz")
    job = _submit(service.stub("alice"), trial_names=["t.npz"])
    job_dir = service.artifact_dir / job.job_id  # <job>/attempt-<n>/inverse_dynamics/
    for attempt in (1, 2):
        (job_dir / f"attempt-{attempt}" / "inverse_dynamics").mkdir(parents=True)
    (job_dir / "attempt-1" / "inverse_dynamics" / "0000_t.npz").write_bytes(b"stale attempt")
    (job_dir / "attempt-2" / "inverse_dynamics" / "0000_t.npz").write_bytes(b"x" * 100_000)
    (job_dir / "attempt-2" / "inverse_dynamics" / ".0001_t.npz.partial").write_bytes(b"half")
    _register(service, job.job_id, f"{job.job_id}/attempt-2/inverse_dynamics", 120)
    with _client(service) as client:
        files = client.list_artifacts(job.job_id)
        assert files == [
            {
                "name": "attempt-2/inverse_dynamics/0000_t.npz",
                "kind": "inverse_dynamics",
                "size_bytes": 100_000,
                "step": 120,
            }
        ]
        out = client.download_file(job.job_id, files[0]["name"], tmp_path / "o.npz")
        assert out.read_bytes() == b"x" * 100_000
        with pytest.raises(Exception) as info:  # a stale attempt's file is not served
            client.download_file(
                job.job_id, "attempt-1/inverse_dynamics/0000_t.npz", tmp_path / "s.npz"
            )
        assert info.value.__cause__.code() == grpc.StatusCode.NOT_FOUND
    with _client(service, "bob") as bob:
        for call in (
            lambda: bob.list_artifacts(job.job_id),
            lambda: bob.download_file(job.job_id, files[0]["name"], tmp_path / "b"),
        ):
            with pytest.raises(Exception) as info:
                call()
            assert info.value.__cause__.code() == grpc.StatusCode.NOT_FOUND
    out, err = io.StringIO(), io.StringIO()
    base = ["--address", service.address, "--token", TOKEN_OF["alice"]]
    assert main([*base, "artifacts", job.job_id], stdout=out, stderr=err) == 0, err.getvalue()
    assert "attempt-2/inverse_dynamics/0000_t.npz" in out.getvalue()
    target = tmp_path / "cli.npz"
    argv = [*base, "download", job.job_id, files[0]["name"], "-o", str(target)]
    assert main(argv, stdout=out, stderr=err) == 0, err.getvalue()
    assert target.read_bytes() == b"x" * 100_000
    trial = tmp_path / "mine.csv"
    trial.write_text("time\n0\n")
    assert (
        main([*base, "upload", str(trial), "--name", "lab/mine.csv"], stdout=out, stderr=err) == 0
    ), err.getvalue()
    assert (service.artifact_dir / "tenants" / "alice" / "inputs" / "lab" / "mine.csv").exists()


def test_submit_is_one_domain_call_that_validates_once(service, monkeypatch) -> None:  # noqa: F811
    """SubmitJob's servicer makes one call (JobService.submit): the request is validated once,
    inline bytes are stored only after every check passed, and validate_only stores nothing."""
    from wildrobot.server import jobs

    calls: list[str] = []
    real = jobs.validate_submission

    def counted(*args, **kwargs):
        calls.append("validate")
        return real(*args, **kwargs)

    monkeypatch.setattr(jobs, "validate_submission", counted)
    stub = service.stub("alice")
    inputs = service.artifact_dir / "tenants" / "alice" / "inputs"
    assert _submit(stub, trials_npz=[b"PK\x03\x04 one"]).job_id
    assert calls == ["validate"]
    assert len(list((inputs / "uploads").iterdir())) == 1
    # A request refused for another field stores none of its bytes.
    with pytest.raises(grpc.RpcError) as info:
        _submit(stub, trials_npz=[b"PK\x03\x04 two"], smooth_window=2)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    preview = jobs_pb2.SubmitJobRequest(
        spec=jobs_pb2.JobSpec(
            inverse_dynamics=jobs_pb2.InverseDynamicsSpec(trials_npz=[b"PK\x03\x04 three"])
        ),
        validate_only=True,
    )
    assert not stub.SubmitJob(preview).created
    assert len(list((inputs / "uploads").iterdir())) == 1
    bad_preview = jobs_pb2.SubmitJobRequest(
        spec=jobs_pb2.JobSpec(inverse_dynamics=jobs_pb2.InverseDynamicsSpec(trials_npz=[b"no"])),
        validate_only=True,
    )
    with pytest.raises(grpc.RpcError) as info:
        stub.SubmitJob(bad_preview)
    assert info.value.details().startswith("spec.inverse_dynamics.trials_npz[0]: is not an .npz")
