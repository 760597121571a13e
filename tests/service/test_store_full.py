"""Redis at its maxmemory (noeviction): SubmitJob answers RESOURCE_EXHAUSTED saying the store is
full, the HTTP API says the same, and every job acknowledged before stays whole. A dedicated
real Redis whose maxmemory is set just above what it holds."""

from __future__ import annotations

import grpc
import pytest
import redis

from tests.conftest import RedisServer
from tests.dashboard.http_client import call
from tests.live_service import TOKEN_OF, AuthedStub, ServerThread, server_config
from tests.service.tiny_jobs import submit, tiny_ppo
from wildrobot.v1 import jobs_pb2

pytestmark = [pytest.mark.redis, pytest.mark.integration]

HEADROOM_BYTES = 384 * 1024
MAX_JOBS = 5000  # far more than the headroom holds


def test_a_full_store_refuses_new_jobs_clearly_and_keeps_acknowledged_ones(tmp_path) -> None:
    store = RedisServer(tmp_path)
    store.start()
    thread = ServerThread(
        server_config(store.url, tmp_path, max_pending_jobs_per_tenant=0)
    ).start()
    admin = redis.Redis.from_url(store.url)
    try:
        with grpc.insecure_channel(thread.address) as channel:
            stub = AuthedStub(channel, TOKEN_OF["alice"])
            acknowledged = [submit(stub, tiny_ppo(1), name="first").job_id]  # scripts loaded
            used = int(admin.info("memory")["used_memory"])
            admin.config_set("maxmemory-policy", "noeviction")
            admin.config_set("maxmemory", used + HEADROOM_BYTES)
            refusal: grpc.RpcError | None = None
            for i in range(MAX_JOBS):
                try:
                    acknowledged.append(submit(stub, tiny_ppo(1), name=f"j{i}").job_id)
                except grpc.RpcError as exc:
                    refusal = exc
                    break
            assert refusal is not None, f"{MAX_JOBS} jobs fit in {HEADROOM_BYTES} bytes"
            assert len(acknowledged) > 10, (refusal.code(), refusal.details())
            assert refusal.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "job store is full" in refusal.details()
            assert "maxmemory" in refusal.details()
            # Again, with a request id: still refused, nothing half-written.
            with pytest.raises(grpc.RpcError) as again:
                submit(stub, tiny_ppo(1), request_id="retry-me")
            assert again.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            # Reads still work, and every acknowledged job is there, whole.
            for job_id in acknowledged:
                job = stub.GetJob(jobs_pb2.GetJobRequest(job_id=job_id))
                assert job.state == jobs_pb2.JOB_STATE_PENDING and job.spec.ppo.task
            listed: list[str] = []
            token = ""
            while True:
                page = stub.ListJobs(jobs_pb2.ListJobsRequest(page_size=500, page_token=token))
                listed += [j.job_id for j in page.jobs]
                token = page.next_page_token
                if not token:
                    break
            assert sorted(listed) == sorted(acknowledged)  # the refused ones left no trace
            queued = sum(admin.xlen(k) for k in admin.scan_iter("wr:queue:*"))
            assert queued == len(acknowledged)
            # The HTTP API says the same on a write (cancel writes an event).
            reply = call(
                f"http://127.0.0.1:{thread.server.http_port}",
                f"/api/jobs/{acknowledged[0]}/cancel",
                TOKEN_OF["alice"],
                method="POST",
            )
            assert reply.status == 503, reply.body
            assert reply.json()["error"]["code"] == "RESOURCE_EXHAUSTED"
            assert "job store is full" in reply.json()["error"]["message"]
            # Room again (the operator raised the limit): submits are accepted again.
            admin.config_set("maxmemory", 0)
            assert submit(stub, tiny_ppo(1), request_id="retry-me").job_id
    finally:
        admin.close()
        thread.stop()
        store.stop()
