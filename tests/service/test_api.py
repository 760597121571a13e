"""JobService over the real server (port 0) and a real Redis: no worker needed."""

from __future__ import annotations

import json

import grpc
import pytest
import redis

from wildrobot.queue import keys
from wildrobot.v1 import jobs_pb2

pytestmark = [pytest.mark.redis, pytest.mark.integration]

TINY = jobs_pb2.PpoSpec(task="PointMass", num_envs=4, batch_size=4, num_minibatches=2)


def submit(stub, spec=TINY, **kwargs) -> jobs_pb2.SubmitJobResponse:
    return stub.SubmitJob(jobs_pb2.SubmitJobRequest(spec=jobs_pb2.JobSpec(ppo=spec), **kwargs))


def code_of(excinfo: pytest.ExceptionInfo) -> grpc.StatusCode:
    return excinfo.value.code()


def db_keys(url: str) -> set[str]:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        return {k for k in client.keys("*") if not k.startswith(f"{keys.PREFIX}:queue:")}
    finally:
        client.close()


def test_submit_get_list(service) -> None:
    stub = service.stub("alice")
    created = submit(stub, name="first")
    assert created.created
    job = created.job
    assert job.state == jobs_pb2.JOB_STATE_PENDING and job.attempt == 0
    assert job.tenant == "alice" and job.name == "first"
    assert job.spec.ppo.task == "PointMass" and job.spec.ppo.num_envs == 4
    assert job.progress.steps_total == job.spec.ppo.num_timesteps
    assert job.last_seq == 1
    assert stub.GetJob(jobs_pb2.GetJobRequest(job_id=job.job_id)) == job
    second = submit(stub).job
    listed = stub.ListJobs(jobs_pb2.ListJobsRequest())
    assert [j.job_id for j in listed.jobs] == [second.job_id, job.job_id]


def test_list_pages_newest_first_and_filters(service) -> None:
    stub = service.stub("alice")
    ids = [submit(stub).job.job_id for _ in range(7)]
    stub.CancelJob(jobs_pb2.CancelJobRequest(job_id=ids[2]))
    seen, token = [], ""
    while True:
        page = stub.ListJobs(jobs_pb2.ListJobsRequest(page_size=3, page_token=token))
        seen += [j.job_id for j in page.jobs]
        token = page.next_page_token
        if not token:
            break
    assert seen == ids[::-1]
    cancelled = stub.ListJobs(
        jobs_pb2.ListJobsRequest(states=[jobs_pb2.JOB_STATE_CANCELLED], kind=jobs_pb2.JOB_KIND_PPO)
    )
    assert [j.job_id for j in cancelled.jobs] == [ids[2]]
    assert not stub.ListJobs(jobs_pb2.ListJobsRequest(kind=jobs_pb2.JOB_KIND_AMP)).jobs
    with pytest.raises(grpc.RpcError) as err:
        stub.ListJobs(jobs_pb2.ListJobsRequest(page_token="garbage"))
    assert code_of(err) == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in err.value.details()


def test_idempotent_submit(service) -> None:
    stub = service.stub("alice")
    first = submit(stub, request_id="req-1")
    again = submit(stub, request_id="req-1")
    assert first.created and not again.created
    assert again.job.job_id == first.job.job_id
    assert len(stub.ListJobs(jobs_pb2.ListJobsRequest()).jobs) == 1
    # The key is per tenant: bob's request-1 is a different job.
    other = submit(service.stub("bob"), request_id="req-1")
    assert other.created and other.job.job_id != first.job.job_id


def test_validate_only_creates_nothing(service) -> None:
    before = db_keys(service.redis_url)
    response = submit(service.stub("alice"), validate_only=True, request_id="dry")
    assert not response.created and response.job.job_id == ""
    assert response.job.spec.ppo.num_envs == 4
    assert db_keys(service.redis_url) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("num_envs", 0),
        ("num_envs", 10_000_000),
        ("num_timesteps", 0),
        ("episode_length", 0),
        ("unroll_length", 0),
        ("batch_size", 0),
        ("num_minibatches", 0),
        ("num_updates_per_batch", 0),
        ("learning_rate", 0.0),
        ("learning_rate", float("nan")),
        ("entropy_cost", -1.0),
        ("discounting", 1.5),
        ("gae_lambda", 2.0),
        ("clipping_epsilon", 0.0),
        ("max_grad_norm", 0.0),
        ("reward_scaling", 0.0),
        ("seed", 2**40),
        ("checkpoint_every", 0),
        ("num_eval_envs", 0),
        ("eval_every", 10_000_000),
        ("task", "Nope"),
    ],
)
def test_invalid_field_names_it(service, field: str, value: object) -> None:
    before = db_keys(service.redis_url)
    spec = jobs_pb2.PpoSpec()
    spec.CopyFrom(TINY)
    setattr(spec, field, value)
    with pytest.raises(grpc.RpcError) as err:
        submit(service.stub("alice"), spec=spec)
    assert code_of(err) == grpc.StatusCode.INVALID_ARGUMENT
    assert f"spec.ppo.{field}" in err.value.details()
    assert db_keys(service.redis_url) == before


def test_invalid_repeated_and_map_fields(service) -> None:
    stub = service.stub("alice")
    for spec, name in [
        (jobs_pb2.PpoSpec(policy_hidden_sizes=[0]), "spec.ppo.policy_hidden_sizes"),
        (jobs_pb2.PpoSpec(value_hidden_sizes=[1] * 9), "spec.ppo.value_hidden_sizes"),
        (jobs_pb2.PpoSpec(num_envs=3, batch_size=4, num_minibatches=1), "spec.ppo"),
    ]:
        with pytest.raises(grpc.RpcError) as err:
            submit(stub, spec=spec)
        assert code_of(err) == grpc.StatusCode.INVALID_ARGUMENT and name in err.value.details()
    bad = jobs_pb2.PpoSpec()
    bad.env_overrides["not a key!"].number_value = 1
    with pytest.raises(grpc.RpcError) as err:
        submit(stub, spec=bad)
    assert "spec.ppo.env_overrides" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        stub.SubmitJob(jobs_pb2.SubmitJobRequest())
    assert code_of(err) == grpc.StatusCode.INVALID_ARGUMENT and "spec" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        submit(stub, name="x" * 500)
    assert code_of(err) == grpc.StatusCode.INVALID_ARGUMENT and "name" in err.value.details()
    assert not stub.ListJobs(jobs_pb2.ListJobsRequest()).jobs


def test_unknown_job_is_not_found(service) -> None:
    stub = service.stub("alice")
    for job_id in ("0" * 32, "not-an-id"):
        for call, request in [
            (stub.GetJob, jobs_pb2.GetJobRequest(job_id=job_id)),
            (stub.CancelJob, jobs_pb2.CancelJobRequest(job_id=job_id)),
            (stub.ListCheckpoints, jobs_pb2.ListCheckpointsRequest(job_id=job_id)),
        ]:
            with pytest.raises(grpc.RpcError) as err:
                call(request)
            assert code_of(err) == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        list(stub.WatchJob(jobs_pb2.WatchJobRequest(job_id="0" * 32)))
    assert code_of(err) == grpc.StatusCode.NOT_FOUND


def test_other_tenant_sees_not_found(service) -> None:
    job = submit(service.stub("alice")).job
    bob = service.stub("bob")
    for call, request in [
        (bob.GetJob, jobs_pb2.GetJobRequest(job_id=job.job_id)),
        (bob.CancelJob, jobs_pb2.CancelJobRequest(job_id=job.job_id)),
        (bob.ListCheckpoints, jobs_pb2.ListCheckpointsRequest(job_id=job.job_id)),
    ]:
        with pytest.raises(grpc.RpcError) as err:
            call(request)
        assert code_of(err) == grpc.StatusCode.NOT_FOUND
    # The streaming reads too: a foreign job is as unknown as a missing one, even when it has
    # a checkpoint that its owner can download.
    _register_checkpoint(service, job.job_id)
    alice = service.stub("alice")
    assert list(alice.DownloadCheckpoint(jobs_pb2.DownloadCheckpointRequest(job_id=job.job_id)))
    for stream in (
        lambda: bob.WatchJob(jobs_pb2.WatchJobRequest(job_id=job.job_id)),
        lambda: bob.DownloadCheckpoint(jobs_pb2.DownloadCheckpointRequest(job_id=job.job_id)),
        lambda: bob.DownloadArtifact(
            jobs_pb2.DownloadArtifactRequest(job_id=job.job_id, kind=jobs_pb2.ARTIFACT_KIND_ONNX)
        ),
    ):
        with pytest.raises(grpc.RpcError) as err:
            list(stream())
        assert code_of(err) == grpc.StatusCode.NOT_FOUND
        assert job.job_id in err.value.details() and "not found" in err.value.details()
    assert not bob.ListJobs(jobs_pb2.ListJobsRequest()).jobs
    state = alice.GetJob(jobs_pb2.GetJobRequest(job_id=job.job_id)).state
    assert state == jobs_pb2.JOB_STATE_PENDING


def _register_checkpoint(service, job_id: str) -> None:
    """A checkpoint of `job_id` in the artifact store and in Redis, as a worker would leave it."""
    rel = f"{job_id}/checkpoints/{1:012d}"
    (service.artifact_dir / rel).mkdir(parents=True)
    (service.artifact_dir / rel / "params.bin").write_bytes(b"weights")
    info = {"step": 1, "attempt": 1, "size_bytes": 7, "path": rel, "created_at_ms": 1}
    client = redis.Redis.from_url(service.redis_url, decode_responses=True)
    try:
        client.hset(keys.checkpoints(job_id), "1", json.dumps(info))
    finally:
        client.close()


def test_list_checks_the_record_tenant(service) -> None:
    """An index entry pointing at another tenant's job (a corrupt or colliding index) must not
    show that job: ListJobs checks each record's tenant, as GetJob does."""
    bobs = submit(service.stub("bob")).job
    client = redis.Redis.from_url(service.redis_url, decode_responses=True)
    try:
        client.zadd(keys.tenant_index("alice"), {bobs.job_id: 10**9})
        client.zadd(keys.tenant_index("alice", "ppo"), {bobs.job_id: 10**9})
    finally:
        client.close()
    alice = service.stub("alice")
    assert not alice.ListJobs(jobs_pb2.ListJobsRequest()).jobs
    assert not alice.ListJobs(jobs_pb2.ListJobsRequest(kind=jobs_pb2.JOB_KIND_PPO)).jobs
    pending = jobs_pb2.ListJobsRequest(states=[jobs_pb2.JOB_STATE_PENDING])
    assert not alice.ListJobs(pending).jobs
    assert [j.job_id for j in service.stub("bob").ListJobs(jobs_pb2.ListJobsRequest()).jobs] == [
        bobs.job_id
    ]


def test_list_rejects_unknown_enum_values(service) -> None:
    stub = service.stub("alice")
    submit(stub)
    for request, field in [
        (jobs_pb2.ListJobsRequest(kind=99), "kind"),
        (jobs_pb2.ListJobsRequest(states=[99]), "states[0]"),
        (jobs_pb2.ListJobsRequest(states=[jobs_pb2.JOB_STATE_PENDING, 42]), "states[1]"),
    ]:
        with pytest.raises(grpc.RpcError) as err:
            stub.ListJobs(request)
        assert code_of(err) == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details().startswith(f"{field}: unknown job")
    assert len(stub.ListJobs(jobs_pb2.ListJobsRequest(kind=jobs_pb2.JOB_KIND_PPO)).jobs) == 1


def test_no_or_bad_token_is_unauthenticated(service) -> None:
    for stub in (service.stub(None), service.stub("mallory")):
        with pytest.raises(grpc.RpcError) as err:
            submit(stub)
        assert code_of(err) == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as err:
            list(stub.WatchJob(jobs_pb2.WatchJobRequest(job_id="0" * 32)))
        assert code_of(err) == grpc.StatusCode.UNAUTHENTICATED
    assert not service.stub("alice").ListJobs(jobs_pb2.ListJobsRequest()).jobs


def test_oversize_request_is_resource_exhausted(service) -> None:
    before = db_keys(service.redis_url)
    with pytest.raises(grpc.RpcError) as err:
        submit(service.stub("alice"), name="x" * (service.thread.config.max_message_bytes + 1))
    assert code_of(err) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert db_keys(service.redis_url) == before


def test_cancel_pending_then_finished(service) -> None:
    stub = service.stub("alice")
    job = submit(stub).job
    cancelled = stub.CancelJob(jobs_pb2.CancelJobRequest(job_id=job.job_id)).job
    assert cancelled.state == jobs_pb2.JOB_STATE_CANCELLED and cancelled.finished_at.seconds > 0
    with pytest.raises(grpc.RpcError) as err:
        stub.CancelJob(jobs_pb2.CancelJobRequest(job_id=job.job_id))
    assert code_of(err) == grpc.StatusCode.FAILED_PRECONDITION
    events = list(stub.WatchJob(jobs_pb2.WatchJobRequest(job_id=job.job_id)))
    assert events[0].WhichOneof("event") == "snapshot"
    assert [e.state.state for e in events[1:]] == [
        jobs_pb2.JOB_STATE_PENDING,
        jobs_pb2.JOB_STATE_CANCELLED,
    ]
    assert [e.seq for e in events[1:]] == [1, 2]
    resumed = list(stub.WatchJob(jobs_pb2.WatchJobRequest(job_id=job.job_id, since_seq=1)))
    assert [e.seq for e in resumed] == [0, 2]


def test_health_needs_no_token(service) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    health = health_pb2_grpc.HealthStub(service.channel())
    reply = health.Check(health_pb2.HealthCheckRequest(service="wildrobot.v1.JobService"))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_reflection_describes_the_services_without_a_token(service, version: str) -> None:
    """A reflection-only client (no token, no generated code) lists the services and gets the
    descriptors of JobService, under both reflection protocol names."""
    from google.protobuf import descriptor_pb2
    from grpc_reflection.v1alpha import reflection_pb2 as messages  # v1 has the same wire form

    call = service.channel().stream_stream(
        f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
        request_serializer=messages.ServerReflectionRequest.SerializeToString,
        response_deserializer=messages.ServerReflectionResponse.FromString,
    )
    replies = list(
        call(
            iter(
                [
                    messages.ServerReflectionRequest(list_services=""),
                    messages.ServerReflectionRequest(
                        file_containing_symbol="wildrobot.v1.JobService"
                    ),
                    messages.ServerReflectionRequest(
                        file_containing_symbol=f"grpc.reflection.{version}.ServerReflection"
                    ),
                ]
            ),
            timeout=30,
        )
    )
    listed = {s.name for s in replies[0].list_services_response.service}
    assert {
        "wildrobot.v1.JobService",
        "wildrobot.v1.DynamicsService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= listed
    for reply, service_name in zip(replies[1:], ["JobService", "ServerReflection"], strict=True):
        assert reply.WhichOneof("message_response") == "file_descriptor_response", reply
        files = [
            descriptor_pb2.FileDescriptorProto.FromString(raw)
            for raw in reply.file_descriptor_response.file_descriptor_proto
        ]
        services = {s.name: f.package for f in files for s in f.service}
        assert service_name in services
    methods = {m.name for f in files for s in f.service for m in s.method}
    assert "ServerReflectionInfo" in methods
    assert services["ServerReflection"] == f"grpc.reflection.{version}"


def test_tokens_are_kept_hashed_and_tenant_names_checked() -> None:
    from wildrobot.server.auth import TokenAuth
    from wildrobot.server.config import ServerConfig

    auth = TokenAuth({"s3cret-token": "alice"})
    assert auth.tenant_of("Bearer s3cret-token") == "alice"
    assert "s3cret-token" not in repr(vars(auth))  # only digests are kept
    for bad in ("Bearer s3cret-toke", "Bearer s3cret-token2", "Basic s3cret-token", ""):
        with pytest.raises(Exception, match="invalid bearer token"):
            auth.tenant_of(bad)
    # ':' would let "a:ppo"'s index key equal tenant "a"'s kind index (wr:idx:a:ppo).
    for tenant in ("a:ppo", "", "-x", "x" * 65, "ünï", "a b"):
        with pytest.raises(ValueError, match="tenant name"):
            ServerConfig(tokens={"t": tenant})
        with pytest.raises(ValueError, match="tenant name"):
            TokenAuth({"t": tenant})
    with pytest.raises(ValueError, match="tenant name"):
        ServerConfig(tokens="t:a:ppo")
    assert ServerConfig(tokens="t:team-1.lab_2").tokens == {"t": "team-1.lab_2"}


def test_checkpoints_of_new_job(service) -> None:
    stub = service.stub("alice")
    job = submit(stub).job
    assert not stub.ListCheckpoints(jobs_pb2.ListCheckpointsRequest(job_id=job.job_id)).checkpoints
    with pytest.raises(grpc.RpcError) as err:
        list(stub.DownloadCheckpoint(jobs_pb2.DownloadCheckpointRequest(job_id=job.job_id)))
    assert code_of(err) == grpc.StatusCode.NOT_FOUND


def test_health_follows_redis(tmp_path) -> None:
    import time

    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from tests.conftest import RedisServer
    from tests.live_service import AuthedStub, ServerThread, server_config

    private = RedisServer(tmp_path)
    private.start()
    thread = ServerThread(server_config(private.url, tmp_path)).start()
    channel = grpc.insecure_channel(thread.address)
    health = health_pb2_grpc.HealthStub(channel)

    def status() -> int:
        return health.Check(health_pb2.HealthCheckRequest(service="")).status

    def wait_status(want: int) -> None:
        deadline = time.monotonic() + 10
        while status() != want:
            assert time.monotonic() < deadline, f"health stayed {status()}"
            time.sleep(0.1)

    try:
        assert status() == health_pb2.HealthCheckResponse.SERVING
        private.stop()
        wait_status(health_pb2.HealthCheckResponse.NOT_SERVING)
        with pytest.raises(grpc.RpcError) as err:
            AuthedStub(channel, "alice-token").GetJob(jobs_pb2.GetJobRequest(job_id="0" * 32))
        assert code_of(err) == grpc.StatusCode.UNAVAILABLE
        private.start()
        wait_status(health_pb2.HealthCheckResponse.SERVING)
    finally:
        channel.close()
        thread.stop()
        private.stop()


def test_tls_when_configured(redis_url, tmp_path) -> None:
    import subprocess

    from tests.live_service import AuthedStub, ServerThread, server_config

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    config = server_config(redis_url, tmp_path, tls_cert_file=cert, tls_key_file=key)
    thread = ServerThread(config).start()
    try:
        credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        with grpc.secure_channel(f"localhost:{thread.port}", credentials) as channel:
            assert submit(AuthedStub(channel, "alice-token")).created
        with grpc.insecure_channel(thread.address) as plain, pytest.raises(grpc.RpcError):
            AuthedStub(plain, "alice-token").ListJobs(jobs_pb2.ListJobsRequest(), timeout=2)
        # The container health check speaks TLS too (--tls-ca / WILDROBOT_TLS_CA_FILE).
        from wildrobot.server import healthcheck

        address = f"localhost:{thread.port}"
        assert healthcheck.main(["--tls-ca", str(cert), "--ready", address]) == 0
        assert healthcheck.main(["--tls-ca", str(cert), "--live", address]) == 0
        assert healthcheck.main(["--timeout-s", "2", address]) == 1  # plaintext is refused
    finally:
        thread.stop()


def test_tls_files_from_flags_or_environment(tmp_path) -> None:
    from wildrobot.server.config import load_config

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    flags = load_config(["--tls-cert-file", str(cert), "--tls-key-file", str(key)], environ={})
    env = load_config(
        [], environ={"WILDROBOT_TLS_CERT_FILE": str(cert), "WILDROBOT_TLS_KEY_FILE": str(key)}
    )
    assert (flags.tls_cert_file, flags.tls_key_file) == (env.tls_cert_file, env.tls_key_file)
    assert (flags.tls_cert_file, flags.tls_key_file) == (cert, key)
    with pytest.raises(ValueError, match="go together"):
        load_config(["--tls-cert-file", str(cert)], environ={})
