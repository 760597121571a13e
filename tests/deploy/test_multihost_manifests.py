"""The Indexed Job a worker launches for a num_hosts > 1 job: valid Kubernetes objects, wired the
way jax.distributed, the NetworkPolicy and the launcher's Role need; and the launcher's use of the
Kubernetes API (create, poll, the scheduling timeout, stop, kill) through the official client,
whose transport (`ApiClient.call_api`) is replaced by an in-memory API server, since no cluster is
reachable here."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from kubernetes import client
from kubernetes.client import rest
from kubernetes_validate import utils as k8s

from tests.deploy.kustomize import render
from tests.deploy.test_manifests import DEPLOY, K8S_VERSIONS, by_kind
from wildrobot.specs import PpoSpec
from wildrobot.workers import launch
from wildrobot.workers.handlers import JobContext
from wildrobot.workers.launch import kubernetes as k8s_launch
from wildrobot.workers.launch import run as launch_run
from wildrobot.workers.launch.kubernetes import KubernetesHostLauncher
from wildrobot.workers.launch.manifests import KubernetesSettings, headless_service, indexed_job
from wildrobot.workers.launch.plan import EXIT_STOPPED, STOP_GRACE_S, LaunchFailed, LaunchPlan
from wildrobot.workers.training import distributed

JOB_UID = "6a1f0c1e-0000-4000-8000-000000000001"


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
    job = indexed_job(plan(), settings)
    service = headless_service(plan(), settings, JOB_UID)
    for obj in (job, service):
        for version in K8S_VERSIONS:
            k8s.validate(obj, version, strict=True)
    name = plan().name
    assert name == "wr-0192f3a4b5c6d7e8f9a0b1c2d3e4f5a6-a2" and len(name) <= 63
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == 4
    assert spec["backoffLimit"] == 0  # retries go through the lease, not Kubernetes
    assert spec["ttlSecondsAfterFinished"] == settings.ttl_after_finished_s > 0
    pod = spec["template"]["spec"]
    assert pod["subdomain"] == name and service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == {"job-name": name}  # label Kubernetes puts on Job pods
    # The Service goes with the Job (garbage collector); no blockOwnerDeletion, which would need
    # rights on jobs/finalizers.
    assert service["metadata"]["ownerReferences"] == [
        {"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": JOB_UID}
    ]
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
    assert host["resources"]["limits"]["nvidia.com/gpu"] == "1"
    # Hardened: no token, no capabilities, read-only root with an emptyDir /tmp.
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = host["securityContext"]
    assert security["capabilities"] == {"drop": ["ALL"]} and security["readOnlyRootFilesystem"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes["tmp"]
    assert {"name": "tmp", "mountPath": "/tmp"} in host["volumeMounts"]

    base = by_kind(render(DEPLOY / "k8s" / "base"))
    # The NetworkPolicy of deploy/k8s lets these pods reach Redis.
    allowed = base[("NetworkPolicy", "wildrobot-redis")]["spec"]["ingress"][0]["from"][0]
    assert (
        allowed["podSelector"]["matchLabels"].items()
        <= spec["template"]["metadata"]["labels"].items()
    )
    # The pods run under their own account, which deploy/k8s defines with no token and binds
    # to no Role.
    account = base[("ServiceAccount", pod["serviceAccountName"])]
    assert pod["serviceAccountName"] == "wildrobot-host"
    assert account["automountServiceAccountToken"] is False
    bound = [
        s["name"]
        for (kind, _), o in base.items()
        if kind in ("RoleBinding", "ClusterRoleBinding")
        for s in o["subjects"]
    ]
    assert "wildrobot-host" not in bound


def test_process_from_env_refuses_an_index_out_of_range() -> None:
    env = {"WILDROBOT_COORDINATOR": "h:1", "WILDROBOT_NUM_PROCESSES": "2"}
    assert distributed.process_from_env({}) is None
    assert distributed.process_from_env({**env, "WILDROBOT_PROCESS_ID": "1"}) == ("h:1", 2, 1)
    with pytest.raises(ValueError, match="outside"):
        distributed.process_from_env({**env, "JOB_COMPLETION_INDEX": "2"})


# --- the launcher through the kubernetes client ------------------------------------------------

COLLECTIONS = {  # path of a namespaced collection -> (API group, resource)
    r"/apis/batch/v1/namespaces/(?P<ns>[^/]+)/jobs": ("batch", "jobs"),
    r"/api/v1/namespaces/(?P<ns>[^/]+)/services": ("", "services"),
}
VERBS = {"POST": "create", "GET": "get", "DELETE": "delete"}


class FakeCluster(client.ApiClient):
    """The kubernetes client with its HTTP transport replaced by an in-memory API server: the
    real BatchV1Api/CoreV1Api build each request (path, query, JSON body) and parse each answer
    (models, ApiException); this stores objects, gives them uids, and answers 404 and 409 as
    the API server does, and deletes what a deleted object owned, as the garbage collector does.
    `requests` records (verb, group, resource, name, query, body)."""

    def __init__(self) -> None:
        super().__init__(client.Configuration(host="https://fake-apiserver"))
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.requests: list[tuple[str, str, str, str, dict[str, list[str]], Any]] = []
        self.job_status: dict[str, int] = {"active": 4}
        self.refuse: dict[tuple[str, str], int] = {}  # (verb, resource) -> HTTP status

    def call_api(self, method, url, header_params=None, body=None, post_params=None, **_):
        parts = urlsplit(url)
        found = [
            (match, group, resource)
            for pattern, (group, resource) in COLLECTIONS.items()
            if (match := re.fullmatch(pattern + r"(?:/(?P<name>[^/]+))?", parts.path))
        ]
        if not found:
            return self._answer(404, {"reason": "NotFound"})
        match, group, resource = found[0]
        verb = VERBS[method]
        name = match["name"] or (body or {}).get("metadata", {}).get("name", "")
        self.requests.append((verb, group, resource, name, parse_qs(parts.query), body))
        if (verb, resource) in self.refuse:
            return self._answer(self.refuse[(verb, resource)], {"reason": "Refused"})
        key = (resource, name)
        if verb == "create":
            if key in self.objects:
                return self._answer(409, {"reason": "AlreadyExists"})
            stored = json.loads(json.dumps(body))
            stored["metadata"]["uid"] = f"uid-{resource}-{name}"
            self.objects[key] = stored
            return self._answer(201, stored)
        if key not in self.objects:
            return self._answer(404, {"reason": "NotFound"})
        if verb == "delete":
            gone = self.objects.pop(key)
            uid = gone["metadata"]["uid"]
            for other, obj in list(self.objects.items()):  # the garbage collector's part
                if any(o["uid"] == uid for o in obj["metadata"].get("ownerReferences", [])):
                    del self.objects[other]
            return self._answer(200, {"kind": "Status", "status": "Success"})
        return self._answer(200, {**self.objects[key], "status": dict(self.job_status)})

    @staticmethod
    def _answer(status: int, payload: dict[str, Any]) -> rest.RESTResponse:
        return rest.RESTResponse(
            SimpleNamespace(
                status=status,
                reason=payload.get("reason", "OK"),
                data=json.dumps(payload).encode(),
                headers={"content-type": "application/json"},
            )
        )

    def calls(self) -> list[tuple[str, str, str]]:
        return [(verb, resource, name) for verb, _, resource, name, _, _ in self.requests]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def launcher(cluster: FakeCluster, clock: Clock | None = None, **settings: Any):
    return KubernetesHostLauncher(
        KubernetesSettings(namespace="ml", **settings), cluster, clock or Clock()
    )


def test_start_creates_the_job_then_a_service_it_owns() -> None:
    cluster = FakeCluster()
    launcher(cluster).start(plan())
    name = plan().name
    assert cluster.calls() == [
        ("delete", "jobs", plan(attempt=1).name),  # an earlier attempt's Job, if any (404 here)
        ("create", "jobs", name),
        ("create", "services", name),
    ]
    job, service = cluster.objects[("jobs", name)], cluster.objects[("services", name)]
    uid = job["metadata"].pop("uid")
    # What the client sent is the manifest, field for field (its models dropped nothing).
    assert job == indexed_job(plan(), KubernetesSettings(namespace="ml"))
    service["metadata"].pop("uid")
    assert service == headless_service(plan(), KubernetesSettings(namespace="ml"), uid)


def test_poll_stop_and_kill_follow_the_job_status() -> None:
    cluster = FakeCluster()
    group = launcher(cluster).start(plan())
    name = plan().name
    assert group.poll() is None
    cluster.job_status = {"succeeded": 4}
    assert group.poll() == 0
    cluster.job_status = {"active": 3, "failed": 1}
    assert group.poll() not in (None, 0, EXIT_STOPPED)  # one host failed: attempt failed
    group.stop()  # cancel/shutdown: delete with a grace period; pods get SIGTERM and checkpoint
    verb, _, resource, deleted, query, _ = cluster.requests[-1]
    assert (verb, resource, deleted) == ("delete", "jobs", name)
    assert query == {
        "gracePeriodSeconds": [str(int(STOP_GRACE_S))],
        "propagationPolicy": ["Foreground"],  # the API's default for Jobs orphans the pods
    }
    assert not cluster.objects  # the Service went with the Job
    assert group.poll() == EXIT_STOPPED  # the Job is gone (404) after a stop: stopped
    group.kill()  # already gone: fine
    assert cluster.requests[-1][4]["gracePeriodSeconds"] == ["0"]


def test_a_new_attempt_deletes_the_jobs_of_earlier_ones() -> None:
    """A launcher that died leaves its attempt's Job behind (maybe Pending, holding the GPUs of
    the pods that were scheduled); the next attempt deletes it by name."""
    cluster = FakeCluster()
    launcher(cluster).start(plan(attempt=1))
    launcher(cluster).start(plan(attempt=2))
    names = {name for _, name in cluster.objects}
    assert names == {plan(attempt=2).name}  # attempt 1's Job and Service are gone
    assert ("delete", "jobs", plan(attempt=1).name) in cluster.calls()


def test_the_job_is_owned_by_the_launchers_pod() -> None:
    settings = KubernetesSettings(owner_pod_name="wildrobot-launcher-7d9f", owner_pod_uid="u-1")
    job = indexed_job(plan(), settings)
    k8s.validate(job, K8S_VERSIONS[-1], strict=True)
    assert job["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Pod", "name": "wildrobot-launcher-7d9f", "uid": "u-1"}
    ]
    assert "ownerReferences" not in indexed_job(plan(), KubernetesSettings())["metadata"]
    base = by_kind(render(DEPLOY / "k8s" / "base"))
    launcher_pod = base[("Deployment", "wildrobot-launcher")]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("valueFrom") for e in launcher_pod["containers"][0]["env"]}
    assert env["WILDROBOT_K8S_OWNER_POD_UID"] == {"fieldRef": {"fieldPath": "metadata.uid"}}
    assert env["WILDROBOT_K8S_OWNER_POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_a_job_deleted_from_outside_fails_the_attempt() -> None:
    cluster = FakeCluster()
    group = launcher(cluster).start(plan())
    del cluster.objects[("jobs", plan().name)]
    with pytest.raises(LaunchFailed, match="deleted from outside"):
        group.poll()


def test_hosts_not_scheduled_in_time_fail_the_attempt_and_delete_the_job() -> None:
    cluster, clock = FakeCluster(), Clock()
    group = launcher(cluster, clock, schedule_timeout_s=300).start(plan())
    cluster.job_status = {"active": 4, "ready": 2}  # two pods Pending: no GPU free for them
    clock.now += 299
    assert group.poll() is None
    clock.now += 2
    with pytest.raises(LaunchFailed) as err:
        group.poll()
    message = str(err.value)
    assert "scheduling timeout" in message and "2 of 4 host pods" in message
    assert "300 s" in message and "WILDROBOT_K8S_SCHEDULE_TIMEOUT_S" in message
    assert not cluster.objects  # Job and Service gone: the pods' GPUs are given back
    assert cluster.requests[-1][4]["gracePeriodSeconds"] == ["0"]


def test_the_timeout_ends_once_every_host_was_ready() -> None:
    cluster, clock = FakeCluster(), Clock()
    group = launcher(cluster, clock, schedule_timeout_s=300).start(plan())
    cluster.job_status = {"active": 4, "ready": 4}
    assert group.poll() is None
    cluster.job_status = {"active": 4, "ready": 3}  # a host restarting its readiness later
    clock.now += 10_000
    assert group.poll() is None
    assert ("jobs", plan().name) in cluster.objects


def test_a_refused_service_deletes_the_job_it_would_belong_to() -> None:
    cluster = FakeCluster()
    cluster.refuse[("create", "services")] = 403
    with pytest.raises(client.ApiException) as err:
        launcher(cluster).start(plan())
    assert err.value.status == 403
    assert cluster.calls()[-1] == ("delete", "jobs", plan().name) and not cluster.objects


def test_run_multi_host_fails_the_job_with_the_timeout_reason(tmp_path: Path, monkeypatch) -> None:
    """The runner's side: the LaunchFailed reaches the runner (FAILED with that reason)."""
    monkeypatch.setattr(launch_run, "POLL_S", 0.0)
    cluster, clock = FakeCluster(), Clock()
    cluster.job_status = {"active": 2, "ready": 0}
    logs: list[str] = []

    def should_stop() -> bool:
        clock.now += 100
        return False

    context = JobContext(
        job_id="0192f3a4b5c6d7e8f9a0b1c2d3e4f5a6",
        attempt=1,
        run_dir=tmp_path / "attempt-1",
        resume_from=None,
        publish=SimpleNamespace(log=lambda level, message: logs.append(message)),
        should_stop=should_stop,
        redis_url="redis://wildrobot-redis:6379/0",
        worker_id="w",
    )
    spec = PpoSpec(num_hosts=2, num_envs=4, batch_size=4, num_minibatches=2)
    with pytest.raises(LaunchFailed, match="scheduling timeout"):
        launch_run.run_multi_host(context, spec, launcher(cluster, clock, schedule_timeout_s=250))
    assert not cluster.objects  # nothing of the attempt is left holding GPUs
    assert logs == ["attempt 1: 2 hosts (wr-0192f3a4b5c6d7e8f9a0b1c2d3e4f5a6-a1)"]


def test_the_launchers_role_grants_exactly_what_it_uses() -> None:
    """Every API call of a whole lifecycle (start, poll, stop, kill, timeout) is allowed by the
    launcher's Role in deploy/k8s, and the Role allows nothing else."""
    cluster, clock = FakeCluster(), Clock()
    group = launcher(cluster, clock, schedule_timeout_s=1).start(plan())
    group.poll()
    group.stop()
    group.poll()
    group.kill()
    timed_out = launcher(cluster, clock, schedule_timeout_s=1).start(plan(attempt=3))
    clock.now += 5
    with pytest.raises(LaunchFailed):
        timed_out.poll()
    used = {(group_, resource, verb) for verb, group_, resource, *_ in cluster.requests}
    role = by_kind(render(DEPLOY / "k8s" / "base"))[("Role", "wildrobot-launcher")]
    granted = {
        (g, r, v)
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    assert used == granted == {
        ("batch", "jobs", "create"), ("batch", "jobs", "get"), ("batch", "jobs", "delete"),
        ("", "services", "create"),
    }  # fmt: skip


def test_outside_a_cluster_the_launcher_says_so(monkeypatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(LaunchFailed, match="not running in a cluster"):
        k8s_launch.in_cluster_client()


def test_settings_from_env() -> None:
    settings = KubernetesSettings.from_env(
        {
            "WILDROBOT_K8S_NAMESPACE": "ml",
            "WILDROBOT_K8S_GPUS_PER_HOST": "8",
            "WILDROBOT_K8S_SCHEDULE_TIMEOUT_S": "90",
        }
    )
    assert (settings.namespace, settings.gpus_per_host, settings.schedule_timeout_s) == (
        "ml", 8, 90.0,
    )  # fmt: skip
    with pytest.raises(ValueError, match="SCHEDULE_TIMEOUT_S"):
        KubernetesSettings.from_env({"WILDROBOT_K8S_SCHEDULE_TIMEOUT_S": "0"})
    chosen = launch.launcher_from_env({"WILDROBOT_MULTIHOST_LAUNCHER": "kubernetes"})
    assert isinstance(chosen, KubernetesHostLauncher)


def test_the_host_pods_read_the_redis_password_from_the_secret_not_the_spec() -> None:
    from wildrobot.workers.launch.manifests import KubernetesSettings, host_env_vars

    values = {"WILDROBOT_REDIS_URL": "redis://:s3cret-pw@wildrobot-redis:6379/0", "X": "1"}
    env = host_env_vars(values, KubernetesSettings())
    assert "s3cret-pw" not in repr(env)
    assert env[0] == {
        "name": "REDIS_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "wildrobot-redis", "key": "password"}},
    }
    url = next(item["value"] for item in env if item["name"] == "WILDROBOT_REDIS_URL")
    assert url == "redis://:$(REDIS_PASSWORD)@wildrobot-redis:6379/0"
    # No password: the URL goes as it is, no Secret is read.
    plain = host_env_vars({"WILDROBOT_REDIS_URL": "redis://r:6379/0"}, KubernetesSettings())
    assert plain == [{"name": "WILDROBOT_REDIS_URL", "value": "redis://r:6379/0"}]
    with pytest.raises(ValueError, match="REDIS_PASSWORD_SECRET"):
        host_env_vars(values, KubernetesSettings(redis_password_secret=""))
