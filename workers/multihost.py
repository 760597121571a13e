"""Launching a multi-host PPO attempt (spec.num_hosts > 1) from the worker that holds its lease.

The worker's runner does not train such a job itself: it writes the spec next to the run, starts
`wildrobot-host` on num_hosts hosts through a `HostLauncher`, and waits. The lease, cancel and
fencing rules stay with the launching worker: its supervisor renews the lease as for any job; a
cancel or shutdown makes the runner stop the hosts (process 0 checkpoints first); and process 0
publishes through writes fenced by this attempt, so once the lease is lost (the worker died or
froze) its writes are refused and the hosts stop by themselves.

Launchers:
    LocalHostLauncher       N processes on this machine (CPU collectives); what tests run
    KubernetesHostLauncher  a headless Service + an Indexed Job (manifests from
                            `indexed_job_manifests`), through the Kubernetes API
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from wildrobot.specs import PpoSpec

from .handlers import HandlerResult, JobContext, JobError

log = logging.getLogger(__name__)

COORDINATOR_PORT = 8476
EXIT_STOPPED = 3  # wildrobot.workers.host: stopped early after a checkpoint
EXIT_LEASE_LOST = 4
POLL_S = 1.0
STOP_GRACE_S = 600.0
LAUNCHER_ENV = "WILDROBOT_MULTIHOST_LAUNCHER"  # local | kubernetes


@dataclass(frozen=True)
class LaunchPlan:
    """What every host of one attempt gets."""

    job_id: str
    attempt: int
    num_hosts: int
    spec_file: Path  # on storage every host sees (the artifacts volume)
    run_dir: Path
    resume_from: Path | None
    redis_url: str
    launched_by: str
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """DNS-1123 name of the attempt's Job and Service: wr-<job id>-a<attempt>."""
        short = re.sub(r"[^a-z0-9]", "", self.job_id.lower())[:40]
        return f"wr-{short}-a{self.attempt}"

    def host_args(self) -> list[str]:
        args = ["--spec-file", str(self.spec_file), "--run-dir", str(self.run_dir)]
        if self.resume_from is not None:
            args += ["--resume-from", str(self.resume_from)]
        return args

    def host_env(self, coordinator: str) -> dict[str, str]:
        return {
            "WILDROBOT_COORDINATOR": coordinator,
            "WILDROBOT_NUM_PROCESSES": str(self.num_hosts),
            "WILDROBOT_REDIS_URL": self.redis_url,
            "WILDROBOT_JOB_ID": self.job_id,
            "WILDROBOT_ATTEMPT": str(self.attempt),
            "WILDROBOT_LAUNCHED_BY": self.launched_by,
            **self.extra_env,
        }


class HostGroup(Protocol):
    def poll(self) -> int | None:
        """None while running; else 0 (finished), EXIT_STOPPED, or another code (failed)."""

    def stop(self) -> None:
        """Ask for a checkpoint and an orderly end (SIGTERM to the hosts)."""

    def kill(self) -> None:
        """End every host now."""


class HostLauncher(Protocol):
    def start(self, plan: LaunchPlan) -> HostGroup: ...


# --- local processes ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalHostGroup:
    def __init__(self, procs: list[subprocess.Popen]) -> None:
        self.procs = procs

    def poll(self) -> int | None:
        codes = [p.poll() for p in self.procs]
        failed = [c for c in codes if c not in (None, 0, EXIT_STOPPED)]
        if failed:
            self.kill()  # one host gone: the others would wait for it in a collective
            return failed[0]
        if None in codes:
            return None
        return EXIT_STOPPED if EXIT_STOPPED in codes else 0

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            proc.wait()


class LocalHostLauncher:
    """num_hosts `wildrobot-host` processes here, coordinator on a free loopback port."""

    def __init__(self, log_dir: Path | None = None) -> None:
        self.log_dir = log_dir

    def start(self, plan: LaunchPlan) -> LocalHostGroup:
        coordinator = f"127.0.0.1:{_free_port()}"
        log_dir = self.log_dir or plan.run_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        procs = []
        for index in range(plan.num_hosts):
            env = dict(os.environ, **plan.host_env(coordinator), JOB_COMPLETION_INDEX=str(index))
            env.pop("WILDROBOT_PROCESS_ID", None)
            with (log_dir / f"host-{plan.attempt}-{index}.log").open("ab") as out:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "wildrobot.workers.host", *plan.host_args()],
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        log.info("job %s: %d local hosts, coordinator %s", plan.job_id, plan.num_hosts, coordinator)
        return LocalHostGroup(procs)


# --- Kubernetes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class KubernetesSettings:
    """Where and how the pods of a multi-host job run (the worker's own pod tells most)."""

    namespace: str = "wildrobot"
    image: str = "wildrobot-train-worker:latest"
    artifacts_claim: str = "wildrobot-artifacts"
    artifacts_mount: str = "/artifacts"
    gpus_per_host: int = 1
    cpu: str = "4"
    memory: str = "32Gi"
    service_account: str = "default"
    ttl_after_finished_s: int = 3600

    @classmethod
    def from_env(cls, environ: dict[str, str] | os._Environ) -> KubernetesSettings:
        values: dict[str, Any] = {}
        for name, info in cls.__dataclass_fields__.items():
            key = f"WILDROBOT_K8S_{name.upper()}"
            if key in environ:
                values[name] = type(info.default)(environ[key])
        return cls(**values)


def indexed_job_manifests(plan: LaunchPlan, k8s: KubernetesSettings) -> list[dict[str, Any]]:
    """A headless Service and an Indexed Job of plan.num_hosts pods, one GPU host each.

    Pod i is `<name>-i.<name>` in DNS; process 0's pod is the coordinator. Each pod gets its
    process id from JOB_COMPLETION_INDEX. backoffLimit 0: a failed host fails the attempt, and
    the job's retry goes through the lease like any other (a new attempt, a new Job).
    """
    name = plan.name
    labels = {
        "app.kubernetes.io/name": "wildrobot-host",
        "app.kubernetes.io/part-of": "wildrobot",
        "wildrobot.io/job-id": re.sub(r"[^A-Za-z0-9_.-]", "", plan.job_id)[:63],
        "wildrobot.io/attempt": str(plan.attempt),
        "wildrobot.io/redis-client": "true",
    }
    coordinator = f"{name}-0.{name}.{k8s.namespace}.svc:{COORDINATOR_PORT}"
    env = [{"name": k, "value": v} for k, v in plan.host_env(coordinator).items()]
    env.append({"name": "WILDROBOT_LOG_FORMAT", "value": "json"})
    resources: dict[str, dict[str, Any]] = {
        "requests": {"cpu": k8s.cpu, "memory": k8s.memory},
        "limits": {"memory": k8s.memory},
    }
    if k8s.gpus_per_host:
        resources["requests"]["nvidia.com/gpu"] = k8s.gpus_per_host
        resources["limits"]["nvidia.com/gpu"] = k8s.gpus_per_host
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": k8s.namespace, "labels": labels},
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,  # the coordinator must resolve before it is ready
            "selector": {"job-name": name},
            "ports": [{"name": "coordinator", "port": COORDINATOR_PORT}],
        },
    }
    pod_spec: dict[str, Any] = {
        "subdomain": name,
        "restartPolicy": "Never",
        "serviceAccountName": k8s.service_account,
        "securityContext": {"runAsUser": 10001, "runAsGroup": 10001, "runAsNonRoot": True},
        "terminationGracePeriodSeconds": int(STOP_GRACE_S),
        "containers": [
            {
                "name": "host",
                "image": k8s.image,
                "command": ["wildrobot-host", *plan.host_args()],
                "env": env,
                "ports": [{"name": "coordinator", "containerPort": COORDINATOR_PORT}],
                "resources": resources,
                "volumeMounts": [{"name": "artifacts", "mountPath": k8s.artifacts_mount}],
            }
        ],
        "volumes": [
            {"name": "artifacts", "persistentVolumeClaim": {"claimName": k8s.artifacts_claim}}
        ],
    }
    if k8s.gpus_per_host:
        pod_spec["tolerations"] = [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        ]
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": k8s.namespace, "labels": labels},
        "spec": {
            "completionMode": "Indexed",
            "completions": plan.num_hosts,
            "parallelism": plan.num_hosts,
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": k8s.ttl_after_finished_s,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }
    return [service, job]


class KubernetesHostGroup:
    def __init__(self, api: Any, plan: LaunchPlan, k8s: KubernetesSettings) -> None:
        self._api = api
        self._plan = plan
        self._k8s = k8s
        self._stopping = False

    def poll(self) -> int | None:
        job = self._api.read_job(self._plan.name, self._k8s.namespace)
        status = job.get("status", {})
        if status.get("succeeded", 0) >= self._plan.num_hosts:
            return 0
        if status.get("failed", 0) > 0:
            return EXIT_STOPPED if self._stopping else 1
        if self._stopping and not status.get("active", 0):
            return EXIT_STOPPED
        return None

    def stop(self) -> None:
        # Deleting the Job sends SIGTERM to every pod; process 0 checkpoints, all stop.
        self._stopping = True
        self._api.delete(self._plan.name, self._k8s.namespace, grace_s=int(STOP_GRACE_S))

    def kill(self) -> None:
        self._api.delete(self._plan.name, self._k8s.namespace, grace_s=0)


class KubernetesApi(Protocol):
    """The three calls the launcher makes."""

    def create(self, manifest: dict[str, Any]) -> None: ...

    def read_job(self, name: str, namespace: str) -> dict[str, Any]: ...

    def delete(self, name: str, namespace: str, grace_s: int) -> None: ...


SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class InClusterKubernetesApi:
    """KubernetesApi over the API server's REST endpoints with the pod's service account token
    (no client library). `base_url`/`token`/`ca_file` default to the in-cluster values."""

    def __init__(
        self, base_url: str | None = None, token: str | None = None, ca_file: str | None = None
    ) -> None:
        if base_url is None:
            host = os.environ.get("KUBERNETES_SERVICE_HOST")
            if not host:
                raise JobError("num_hosts > 1 on Kubernetes: not running in a cluster")
            base_url = f"https://{host}:{os.environ.get('KUBERNETES_SERVICE_PORT', '443')}"
            token = token or (SERVICE_ACCOUNT_DIR / "token").read_text().strip()
            ca_file = ca_file or str(SERVICE_ACCOUNT_DIR / "ca.crt")
        self._base = base_url.rstrip("/")
        self._token = token
        self._context = ssl.create_default_context(cafile=ca_file) if ca_file else None

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(
            self._base + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        if self._token:
            request.add_header("Authorization", f"Bearer {self._token}")
        with urllib.request.urlopen(request, timeout=30, context=self._context) as response:
            return json.loads(response.read() or b"{}")

    @staticmethod
    def _collection(kind: str, namespace: str) -> str:
        if kind == "Job":
            return f"/apis/batch/v1/namespaces/{namespace}/jobs"
        if kind == "Service":
            return f"/api/v1/namespaces/{namespace}/services"
        raise ValueError(f"the launcher does not create {kind}")

    def create(self, manifest: dict[str, Any]) -> None:
        namespace = manifest["metadata"]["namespace"]
        self._call("POST", self._collection(manifest["kind"], namespace), manifest)

    def read_job(self, name: str, namespace: str) -> dict[str, Any]:
        return self._call("GET", f"{self._collection('Job', namespace)}/{name}/status")

    def delete(self, name: str, namespace: str, grace_s: int) -> None:
        options = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "propagationPolicy": "Foreground",
            "gracePeriodSeconds": grace_s,
        }
        for kind in ("Job", "Service"):
            try:
                self._call("DELETE", f"{self._collection(kind, namespace)}/{name}", options)
            except urllib.error.HTTPError as exc:
                if exc.code != 404:  # already gone is fine
                    raise


class KubernetesHostLauncher:
    def __init__(self, k8s: KubernetesSettings, api: KubernetesApi | None = None) -> None:
        self.k8s = k8s
        self._api = api

    def start(self, plan: LaunchPlan) -> KubernetesHostGroup:
        api = self._api or InClusterKubernetesApi()
        for manifest in indexed_job_manifests(plan, self.k8s):
            api.create(manifest)
        log.info("job %s: Indexed Job %s (%d hosts)", plan.job_id, plan.name, plan.num_hosts)
        return KubernetesHostGroup(api, plan, self.k8s)


def launcher_from_env(environ: dict[str, str] | os._Environ | None = None) -> HostLauncher:
    environ = os.environ if environ is None else environ
    kind = environ.get(LAUNCHER_ENV, "local")
    if kind == "local":
        return LocalHostLauncher()
    if kind == "kubernetes":
        return KubernetesHostLauncher(KubernetesSettings.from_env(environ))
    raise JobError(f"{LAUNCHER_ENV}={kind!r} is not local or kubernetes")


# --- the runner side ------------------------------------------------------------------------


def _last_checkpoint_step(run_dir: Path) -> int:
    """Env steps of the newest checkpoint process 0 wrote (directory names are the steps)."""
    steps = [int(p.name) for p in (run_dir / "checkpoints").glob("[0-9]*") if p.name.isdigit()]
    return max(steps, default=0)


def run_multi_host(
    context: JobContext, spec: PpoSpec, launcher: HostLauncher | None = None
) -> HandlerResult:
    """Runs one attempt on spec.num_hosts hosts and waits; the caller holds the lease."""
    if not context.redis_url:
        raise JobError("a multi-host job needs the worker's Redis URL for fenced writes")
    launcher = launcher or launcher_from_env()
    context.run_dir.mkdir(parents=True, exist_ok=True)
    spec_file = context.run_dir / f"spec-attempt-{context.attempt}.json"
    spec_file.write_text(spec.model_dump_json())
    plan = LaunchPlan(
        job_id=context.job_id,
        attempt=context.attempt,
        num_hosts=spec.num_hosts,
        spec_file=spec_file,
        run_dir=context.run_dir,
        resume_from=context.resume_from,
        redis_url=context.redis_url,
        launched_by=context.worker_id,
    )
    context.publish.log("info", f"attempt {context.attempt}: {spec.num_hosts} hosts ({plan.name})")
    group = launcher.start(plan)
    stop_sent = None
    try:
        while (code := group.poll()) is None:
            if stop_sent is None and context.should_stop():  # raises LeaseLost when stale
                group.stop()
                stop_sent = time.monotonic()
            if stop_sent is not None and time.monotonic() - stop_sent > STOP_GRACE_S:
                group.kill()
            time.sleep(POLL_S)
    except BaseException:
        group.kill()
        raise
    if code in (0, EXIT_STOPPED):
        return HandlerResult(final_step=_last_checkpoint_step(context.run_dir), stopped=code != 0)
    if code == EXIT_LEASE_LOST:
        from wildrobot.queue.client import LeaseLost

        raise LeaseLost(f"job {context.job_id}: process 0 found attempt {context.attempt} stale")
    raise RuntimeError(f"a host of the {spec.num_hosts}-host run exited with code {code}")
