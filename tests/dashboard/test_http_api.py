"""The dashboard's HTTP API through the real front end (port 0) and a real Redis."""

from __future__ import annotations

import io
import tarfile
import time

import pytest

from tests.dashboard.http_client import call
from tests.live_service import TOKEN_OF
from tests.service.tiny_jobs import submit, tiny_ppo
from wildrobot import exports
from wildrobot.queue.client import QueueClient, connect
from wildrobot.server.auth import TokenAuth
from wildrobot.server.dashboard.api import DashboardServices, make_app
from wildrobot.v1 import jobs_pb2

pytestmark = [pytest.mark.redis, pytest.mark.integration]

ALICE, BOB = TOKEN_OF["alice"], TOKEN_OF["bob"]
ANY_ID = "0" * 32


def api_paths(job_id: str) -> list[tuple[str, str]]:
    job = f"/api/jobs/{job_id}"
    return [
        ("GET", "/api/whoami"),
        ("GET", "/api/jobs"),
        ("GET", job),
        ("POST", job + "/cancel"),
        ("GET", job + "/metrics"),
        ("GET", job + "/log"),
        ("GET", job + "/checkpoints"),
        ("GET", job + "/checkpoints/latest/download"),
        ("GET", job + "/checkpoints/latest/artifacts/video"),
        ("GET", job + "/events"),
        ("GET", "/api/no-such-route"),
    ]


def test_every_api_route_needs_a_valid_token(service) -> None:
    job_id = submit(service.stub("alice"), tiny_ppo(1)).job_id
    paths = api_paths(job_id)
    for method, path in paths:
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": f"Basic {ALICE}"}):
            reply = call(service.http_url, path, method=method, headers=headers)
            assert reply.status == 401, (method, path, headers, reply.body)
            assert reply.json()["error"]["code"] == "UNAUTHENTICATED"
            assert reply.headers["www-authenticate"] == "Bearer"
    assert call(service.http_url, "/api/whoami", ALICE).json() == {"tenant": "alice"}
    # The page itself is public (it holds no data) and loads nothing from other origins.
    page = call(service.http_url, "/")
    assert page.status == 200 and b"<title>WildRobot Train" in page.body
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_api_paths_cover_every_route_the_app_serves() -> None:
    """So the auth test above reaches every /api/ route (a new route can't skip it)."""
    app = make_app(DashboardServices(None, None, None, None, 1.0, None), TokenAuth({}))  # type: ignore[arg-type]
    served = {
        (m, r.path.replace("{job_id}", "X").replace("{step}", "latest").replace("{kind}", "video"))
        for r in app.routes
        if getattr(r, "path", "").startswith("/api/") and "{rest" not in r.path
        for m in (r.methods or ()) - {"HEAD"}
    }
    listed = {(m, p) for m, p in api_paths("X")} - {("GET", "/api/no-such-route")}
    assert served == listed


def test_tenant_isolation(service) -> None:
    job_id = submit(service.stub("alice"), tiny_ppo(1), name="alice's").job_id
    assert [j["job_id"] for j in call(service.http_url, "/api/jobs", ALICE).json()["jobs"]] == [
        job_id
    ]
    assert call(service.http_url, "/api/jobs", BOB).json() == {"jobs": [], "next_page_token": ""}
    for method, path in api_paths(job_id)[2:-1]:
        reply = call(service.http_url, path, BOB, method=method)
        assert reply.status == 404, (path, reply.body)
        assert reply.json()["error"]["code"] == "NOT_FOUND"
    # Bob's 404 cancelled nothing.
    assert call(service.http_url, f"/api/jobs/{job_id}", ALICE).json()["state"] == "PENDING"


def test_job_payload_agrees_with_grpc(service) -> None:
    stub = service.stub("alice")
    job = submit(stub, tiny_ppo(3), name="agree")
    body = call(service.http_url, f"/api/jobs/{job.job_id}", ALICE).json()
    grpc_job = stub.GetJob(jobs_pb2.GetJobRequest(job_id=job.job_id))
    assert body["name"] == grpc_job.name == "agree"
    assert body["state"] == "PENDING" and grpc_job.state == jobs_pb2.JOB_STATE_PENDING
    assert body["steps_total"] == grpc_job.progress.steps_total == 3 * 1280
    assert body["last_seq"] == grpc_job.last_seq == 1
    assert body["spec"]["task"] == grpc_job.spec.ppo.task == "PointMass"
    assert body["kind"] == "ppo" and body["eta_s"] is None and body["progress"] == 0.0


def test_filters_paging_and_bad_queries(service) -> None:
    stub = service.stub("alice")
    ids = [submit(stub, tiny_ppo(1), name=f"j{i}").job_id for i in range(7)]
    for job_id in (ids[1], ids[4]):
        reply = call(service.http_url, f"/api/jobs/{job_id}/cancel", ALICE, method="POST")
        assert reply.status == 200 and reply.json()["state"] == "CANCELLED"
    again = call(service.http_url, f"/api/jobs/{ids[1]}/cancel", ALICE, method="POST")
    assert again.status == 409 and again.json()["error"]["code"] == "FAILED_PRECONDITION"

    def list_ids(query: str) -> tuple[list[str], str]:
        body = call(service.http_url, "/api/jobs?" + query, ALICE).json()
        return [j["job_id"] for j in body["jobs"]], body["next_page_token"]

    assert list_ids("state=CANCELLED")[0] == [ids[4], ids[1]]
    assert list_ids("state=pending,cancelled&kind=ppo")[0] == ids[::-1]
    assert list_ids("state=PENDING&state=RUNNING")[0] == [
        i for i in ids[::-1] if i not in (ids[1], ids[4])
    ]
    assert list_ids("kind=amp")[0] == []
    seen, token = [], ""
    while True:
        page, token = list_ids(f"page_size=3&page_token={token}")
        assert len(page) <= 3
        seen += page
        if not token:
            break
    assert seen == ids[::-1]
    for query, field in [
        ("state=SLEEPING", "state"),
        ("kind=chess", "kind"),
        ("page_size=501", "page_size"),
        ("page_size=x", "page_size"),
        ("page_token=garbage", "page_token"),
    ]:
        reply = call(service.http_url, "/api/jobs?" + query, ALICE)
        assert reply.status == 400, query
        assert reply.json()["error"]["fields"] == [field]
    assert call(service.http_url, "/api/jobs/not-an-id", ALICE).status == 404


def take(service, events_maxlen: int = 10_000):
    queue = QueueClient(connect(service.redis_url), events_maxlen=events_maxlen)
    queue.ensure_groups(["ppo"])
    lease = queue.take(["ppo"], "test-worker", lease_s=60, block_ms=2000)
    assert lease is not None
    return queue, lease


def test_metric_history_outlives_the_event_stream_cap(service) -> None:
    job_id = submit(service.stub("alice"), tiny_ppo(500)).job_id
    queue, lease = take(service, events_maxlen=20)
    seqs = [
        queue.metrics(lease, 1280 * (i + 1), {"episode/reward": float(i)}, 0.5 * i, 100.0)
        for i in range(150)
    ]
    assert queue.redis.xlen(f"wr:job:{job_id}:events") < 150  # the capped stream lost most
    points, after = [], 0
    while True:
        body = call(service.http_url, f"/api/jobs/{job_id}/metrics?after={after}&limit=40", ALICE)
        page = body.json()
        points += page["points"]
        if not page["more"]:
            break
        after = page["points"][-1]["seq"]
    assert [p["seq"] for p in points] == seqs
    assert [p["values"]["episode/reward"] for p in points] == [float(i) for i in range(150)]
    assert points[-1]["step"] == 150 * 1280 and points[-1]["attempt"] == lease.attempt
    assert page["last_seq"] == seqs[-1]
    bad = call(service.http_url, f"/api/jobs/{job_id}/metrics?limit=100000", ALICE)
    assert bad.status == 400


def test_log_and_checkpoint_download(service) -> None:
    job_id = submit(service.stub("alice"), tiny_ppo(5)).job_id
    queue, lease = take(service)
    queue.metrics(lease, 1280, {"episode/reward": 1.0}, 1.0, 10.0)
    ckpt = service.artifact_dir / job_id / "checkpoints" / f"{1280:012d}"
    ckpt.mkdir(parents=True)
    (ckpt / "state.bin").write_bytes(b"\x01\x02" * 1000)
    queue.checkpoint(lease, 1280, f"{job_id}/checkpoints/{1280:012d}", 2000)
    queue.log_line(lease, "info", "hello from the worker")
    events = call(service.http_url, f"/api/jobs/{job_id}/log", ALICE).json()["events"]
    assert [e["kind"] for e in events] == ["state", "state", "checkpoint", "log"]
    assert events[-1]["message"] == "hello from the worker" and "path" not in events[2]
    until = events[2]["seq"]
    upto = call(service.http_url, f"/api/jobs/{job_id}/log?until={until}", ALICE).json()
    assert [e["seq"] for e in upto["events"]] == [e["seq"] for e in events[:3]]
    listed = call(service.http_url, f"/api/jobs/{job_id}/checkpoints", ALICE).json()
    assert [c["step"] for c in listed["checkpoints"]] == [1280]
    for which in ("latest", "1280"):
        reply = call(service.http_url, f"/api/jobs/{job_id}/checkpoints/{which}/download", ALICE)
        assert reply.status == 200 and reply.headers["content-type"] == "application/x-tar"
        with tarfile.open(fileobj=io.BytesIO(reply.body)) as tar:
            member = tar.extractfile(f"{1280:012d}/state.bin")
            assert member is not None and member.read() == b"\x01\x02" * 1000
    missing = call(service.http_url, f"/api/jobs/{job_id}/checkpoints/99/download", ALICE)
    assert missing.status == 404


def test_exports_listed_and_served(service) -> None:
    """The job page's video and ONNX links: listed per checkpoint, served with their type."""
    job_id = submit(service.stub("alice"), tiny_ppo(5)).job_id
    queue, lease = take(service)
    for step in (1280, 2560):
        ckpt = service.artifact_dir / job_id / "checkpoints" / f"{step:012d}"
        ckpt.mkdir(parents=True)
        (ckpt / "state.bin").write_bytes(b"\0" * 10)
        queue.checkpoint(lease, step, f"{job_id}/checkpoints/{step:012d}", 10, best=step == 1280)
    video = exports.artifact_path(ckpt, exports.ArtifactKind.VIDEO)
    video.parent.mkdir()
    video.write_bytes(b"\0\0\0\x18ftypmp42" + bytes(range(256)) * 40)
    listed = call(service.http_url, f"/api/jobs/{job_id}/checkpoints", ALICE).json()
    assert [(c["step"], c["exports"], c["best"]) for c in listed["checkpoints"]] == [
        (1280, [], True),
        (2560, ["video"], False),
    ]
    for which in ("latest", "2560"):
        path = f"/api/jobs/{job_id}/checkpoints/{which}/artifacts/video"
        reply = call(service.http_url, path, ALICE)
        assert reply.status == 200 and reply.body == video.read_bytes()
        assert reply.headers["content-type"] == "video/mp4"
        assert reply.headers["content-length"] == str(video.stat().st_size)
        assert f"{job_id}-{2560:012d}-rollout.mp4" in reply.headers["content-disposition"]
    # The browser may play it from a blob: URL (the page's policy allows exactly that).
    assert "media-src 'self' blob:" in reply.headers["content-security-policy"]
    base = f"/api/jobs/{job_id}/checkpoints"
    for path, status, field in (
        (f"{base}/latest/artifacts/onnx", 404, None),  # no ONNX exported
        (f"{base}/1280/artifacts/video", 404, None),  # older checkpoint: no video
        (f"{base}/latest/artifacts/weights", 400, "kind"),
        (f"{base}/last/artifacts/video", 400, "step"),
    ):
        reply = call(service.http_url, path, ALICE)
        assert reply.status == status, (path, reply.body)
        if field:
            assert reply.json()["error"]["fields"] == [field]
    assert call(service.http_url, f"{base}/latest/artifacts/video", BOB).status == 404


def test_keep_alive_requests_are_not_held_by_nagle(service) -> None:
    """A response's body leaves with its headers (TCP_NODELAY): no 40 ms delayed-ACK stall."""
    import http.client
    from urllib.parse import urlsplit

    url = urlsplit(service.http_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    times = []
    try:
        for _ in range(8):
            start = time.perf_counter()
            conn.request("GET", "/api/whoami", headers={"authorization": f"Bearer {ALICE}"})
            assert conn.getresponse().read() == b'{"tenant":"alice"}'
            times.append(time.perf_counter() - start)
    finally:
        conn.close()
    assert min(times[1:]) < 0.035, times  # with Nagle every reused-connection call takes >= 40 ms


def test_https_with_the_grpc_tls_pair(redis_url, tmp_path) -> None:
    import http.client
    import ssl
    import subprocess

    from tests.live_service import ServerThread, server_config

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    thread = ServerThread(
        server_config(redis_url, tmp_path, tls_cert_file=cert, tls_key_file=key)
    ).start()
    try:
        port = thread.server.http_port
        context = ssl.create_default_context(cafile=str(cert))
        conn = http.client.HTTPSConnection("localhost", port, timeout=10, context=context)
        conn.request("GET", "/api/whoami", headers={"authorization": f"Bearer {ALICE}"})
        assert conn.getresponse().read() == b'{"tenant":"alice"}'
        conn.close()
        with pytest.raises((ConnectionError, http.client.HTTPException)):  # no plain text
            call(f"http://127.0.0.1:{port}", "/api/whoami", ALICE)
    finally:
        thread.stop()


def test_dashboard_can_be_turned_off(redis_url, tmp_path) -> None:
    from tests.live_service import ServerThread, server_config
    from wildrobot.server.config import load_config

    assert load_config(["--dashboard", "false"], environ={}).dashboard is False
    assert load_config([], environ={"WILDROBOT_HTTP_PORT": "9090"}).http_port == 9090
    thread = ServerThread(server_config(redis_url, tmp_path, dashboard=False)).start()
    try:
        assert thread.server.http_port is None
    finally:
        thread.stop()
