"""The Indexed Job a worker launches for a num_hosts > 1 job: valid Kubernetes objects, wired the
way jax.distributed and the NetworkPolicy need; and the launcher's use of the Kubernetes API
(create, poll, stop, kill) against a recording fake, since no cluster is reachable here."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from kubernetes_validate import utils as k8s

from tests.deploy.kustomize import render
from tests.deploy.test_manifests import DEPLOY, K8S_VERSIONS, by_kind
from wildrobot.workers import multihost
from wildrobot.workers.multihost import (
    InClusterKubernetesApi,
    KubernetesHostLauncher,
    KubernetesSettings,
    LaunchPlan,
    indexed_job_manifests,
)
from wildrobot.workers.training import distributed


def plan(**overrides: Any) -> LaunchPlan:
    values: dict[str, Any] = {
        "job_id": "0192F3A4B5C6D7E8F9A0B1C2D3E4F5A6",
        "attempt": 2,
        "num_hosts": 4,
        "spec_file": Path("/artifacts/j/spec-attempt-2.json"),
        "run_dir": Path("/artifacts/j"),
        "resume_from": Path("/artifacts/j/checkpoints/000000012800"),
        "redis_url": "redis://wildrobot-redis:6379/0",
        "launched_by": "wildrobot-worker-abc",
    }
    values.update(overrides)
    return LaunchPlan(**values)


def test_indexed_job_is_valid_and_wired_for_jax_distributed() -> None:
    settings = KubernetesSettings(namespace="wildrobot", gpus_per_host=1)
    objects = indexed_job_manifests(plan(), settings)
    for obj in objects:
        for version in K8S_VERSIONS:
            k8s.validate(obj, version, strict=True)
    objs = by_kind(objects)
    name = plan().name
    assert name == "wr-0192f3a4b5c6d7e8f9a0b1c2d3e4f5a6-a2" and len(name) <= 63
    job, service = objs[("Job", name)], objs[("Service", name)]
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == 4
    assert spec["backoffLimit"] == 0  # retries go through the lease, not Kubernetes
    pod = spec["template"]["spec"]
    assert (
        pod["subdomain"] == service["metadata"]["name"] and service["spec"]["clusterIP"] == "None"
    )
    assert service["spec"]["selector"] == {"job-name": name}  # label Kubernetes puts on Job pods
    host = pod["containers"][0]
    env = {e["name"]: e["value"] for e in host["env"]}
    # Pod 0 is <job>-0 under the headless service; process ids come from JOB_COMPLETION_INDEX.
    assert env["WILDROBOT_COORDINATOR"] == f"{name}-0.{name}.wildrobot.svc:8476"
    assert env["WILDROBOT_NUM_PROCESSES"] == "4"
    assert "WILDROBOT_PROCESS_ID" not in env and "JOB_COMPLETION_INDEX" not in env
    assert env["WILDROBOT_ATTEMPT"] == "2"  # process 0's writes are fenced by this attempt
    assert distributed.process_from_env({**env, "JOB_COMPLETION_INDEX": "3"}) == (
        env["WILDROBOT_COORDINATOR"], 4, 3,
    )  # fmt: skip
    assert host["command"][:1] == ["wildrobot-host"]
    assert host["command"][host["command"].index("--resume-from") + 1].endswith("000000012800")
    assert host["resources"]["limits"]["nvidia.com/gpu"] == 1
    # The NetworkPolicy of deploy/k8s lets these pods reach Redis.
    base = by_kind(render(DEPLOY / "k8s" / "base"))
    allowed = base[("NetworkPolicy", "wildrobot-redis")]["spec"]["ingress"][0]["from"][0]
    labels = spec["template"]["metadata"]["labels"]
    assert allowed["podSelector"]["matchLabels"].items() <= labels.items()
    # ... and the worker's Role may create what the launcher creates.
    rules = base[("Role", "wildrobot-worker")]["rules"]
    for obj in objects:
        group = obj["apiVersion"].rpartition("/")[0]
        resource = obj["kind"].lower() + "s"
        assert any(
            group in r["apiGroups"] and resource in r["resources"] and "create" in r["verbs"]
            for r in rules
        ), obj["kind"]


def test_process_from_env_refuses_an_index_out_of_range() -> None:
    env = {"WILDROBOT_COORDINATOR": "h:1", "WILDROBOT_NUM_PROCESSES": "2"}
    assert distributed.process_from_env({}) is None
    assert distributed.process_from_env({**env, "WILDROBOT_PROCESS_ID": "1"}) == ("h:1", 2, 1)
    with pytest.raises(ValueError, match="outside"):
        distributed.process_from_env({**env, "JOB_COMPLETION_INDEX": "2"})


class FakeApi:
    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []
        self.deleted: list[tuple[str, int]] = []
        self.status: dict[str, int] = {"active": 4}

    def create(self, manifest: dict[str, Any]) -> None:
        self.created.append(manifest)

    def read_job(self, name: str, namespace: str) -> dict[str, Any]:
        assert any(m["metadata"]["name"] == name for m in self.created if m["kind"] == "Job")
        return {"status": dict(self.status)}

    def delete(self, name: str, namespace: str, grace_s: int) -> None:
        self.deleted.append((name, grace_s))


def test_kubernetes_launcher_creates_polls_stops_and_kills() -> None:
    api = FakeApi()
    group = KubernetesHostLauncher(KubernetesSettings(), api).start(plan())
    assert [m["kind"] for m in api.created] == ["Service", "Job"]
    assert group.poll() is None
    api.status = {"succeeded": 4}
    assert group.poll() == 0
    api.status = {"active": 3, "failed": 1}
    assert group.poll() not in (None, 0, multihost.EXIT_STOPPED)  # one host failed: attempt failed
    group.stop()  # cancel/shutdown: delete with a grace period; pods get SIGTERM and checkpoint
    assert api.deleted == [(plan().name, int(multihost.STOP_GRACE_S))]
    api.status = {}
    assert group.poll() == multihost.EXIT_STOPPED
    group.kill()
    assert api.deleted[-1] == (plan().name, 0)


def test_settings_from_env() -> None:
    settings = KubernetesSettings.from_env(
        {"WILDROBOT_K8S_NAMESPACE": "ml", "WILDROBOT_K8S_GPUS_PER_HOST": "8"}
    )
    assert (settings.namespace, settings.gpus_per_host) == ("ml", 8)
    launcher = multihost.launcher_from_env({"WILDROBOT_MULTIHOST_LAUNCHER": "kubernetes"})
    assert isinstance(launcher, KubernetesHostLauncher)
    assert isinstance(multihost.launcher_from_env({}), multihost.LocalHostLauncher)


class FakeApiServer(http.server.ThreadingHTTPServer):
    """Just enough of the Kubernetes API server: records requests, answers Job status."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, Any], str]] = []
        self.job_status: dict[str, Any] = {"active": 4}
        super().__init__(("127.0.0.1", 0), FakeApiHandler)


class FakeApiHandler(http.server.BaseHTTPRequestHandler):
    server: FakeApiServer

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else {}
        self.server.requests.append(
            (self.command, self.path, body, self.headers.get("Authorization", ""))
        )
        if self.command == "DELETE" and "/services/" in self.path:
            self.send_response(404)  # already gone: the launcher carries on
            self.end_headers()
            return
        reply = {"status": self.server.job_status} if self.command == "GET" else {}
        data = json.dumps(reply).encode()
        self.send_response(201 if self.command == "POST" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _handle

    def log_message(self, *args: object) -> None:
        pass


def test_rest_api_calls_against_a_fake_api_server() -> None:
    server = FakeApiServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        api = InClusterKubernetesApi(f"http://127.0.0.1:{server.server_address[1]}", token="t0k")
        group = KubernetesHostLauncher(KubernetesSettings(namespace="ml"), api).start(plan())
        assert group.poll() is None
        server.job_status = {"succeeded": 4}
        assert group.poll() == 0
        group.stop()
    finally:
        server.shutdown()
        server.server_close()
    name = plan().name
    calls = [(method, path) for method, path, _, _ in server.requests]
    assert calls == [
        ("POST", "/api/v1/namespaces/ml/services"),
        ("POST", "/apis/batch/v1/namespaces/ml/jobs"),
        ("GET", f"/apis/batch/v1/namespaces/ml/jobs/{name}/status"),
        ("GET", f"/apis/batch/v1/namespaces/ml/jobs/{name}/status"),
        ("DELETE", f"/apis/batch/v1/namespaces/ml/jobs/{name}"),
        ("DELETE", f"/api/v1/namespaces/ml/services/{name}"),
    ]
    assert {auth for *_, auth in server.requests} == {"Bearer t0k"}
    assert server.requests[1][2]["spec"]["completionMode"] == "Indexed"
    assert server.requests[4][2]["propagationPolicy"] == "Foreground"
