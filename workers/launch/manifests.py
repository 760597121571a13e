"""The Kubernetes objects of one multi-host attempt: an Indexed Job of num_hosts `wildrobot-host`
pods and the headless Service that gives pod 0 (the jax.distributed coordinator) a DNS name.
Plain dicts, rendered here and checked against the Kubernetes schemas in tests/deploy."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .plan import COORDINATOR_PORT, STOP_GRACE_S, LaunchPlan

HOST_SERVICE_ACCOUNT = "wildrobot-host"  # deploy/k8s/base/launcher.yaml: no API rights, no token


@dataclass(frozen=True)
class KubernetesSettings:
    """Where and how the pods of a multi-host job run; WILDROBOT_K8S_<FIELD> on the worker."""

    namespace: str = "wildrobot"
    image: str = "wildrobot-train-worker:latest"
    artifacts_claim: str = "wildrobot-artifacts"
    artifacts_mount: str = "/artifacts"
    gpus_per_host: int = 1
    cpu: str = "4"
    memory: str = "32Gi"
    service_account: str = HOST_SERVICE_ACCOUNT
    # A finished Job (and, through owner references, its pods and Service) is deleted this long
    # after it ends.
    ttl_after_finished_s: int = 3600
    # Every host pod must be Ready (scheduled, image pulled, started) this long after the Job is
    # created, or the attempt fails with a reason naming this limit and the Job is deleted: a
    # GPU pool without room for num_hosts pods never holds a launcher forever.
    schedule_timeout_s: float = 600.0
    # The launcher's own pod (downward API): the Job is owned by it, so a launcher pod that is
    # deleted (node lost, evicted, scaled down) takes its Jobs, their pods and GPUs with it.
    owner_pod_name: str = ""
    owner_pod_uid: str = ""
    # The Secret (key `password`) the host pods read Redis's password from: the pod spec carries
    # `$(REDIS_PASSWORD)` in the URL, never the password itself (anyone who may read Jobs would
    # read it there).
    redis_password_secret: str = "wildrobot-redis"

    @classmethod
    def from_env(cls, environ: dict[str, str] | os._Environ) -> KubernetesSettings:
        values: dict[str, Any] = {}
        for name, info in cls.__dataclass_fields__.items():
            key = f"WILDROBOT_K8S_{name.upper()}"
            if key in environ:
                values[name] = type(info.default)(environ[key])
        settings = cls(**values)
        if settings.schedule_timeout_s <= 0:
            raise ValueError("WILDROBOT_K8S_SCHEDULE_TIMEOUT_S: must be above 0")
        return settings


def labels(plan: LaunchPlan) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "wildrobot-host",
        "app.kubernetes.io/part-of": "wildrobot",
        "wildrobot.io/job-id": re.sub(r"[^A-Za-z0-9_.-]", "", plan.job_id)[:63],
        "wildrobot.io/attempt": str(plan.attempt),
        "wildrobot.io/redis-client": "true",
    }


def host_env_vars(values: dict[str, str], k8s: KubernetesSettings) -> list[dict[str, Any]]:
    """The host container's env: the Redis URL's password replaced by `$(REDIS_PASSWORD)`, which
    Kubernetes expands from the Secret (declared first, so the expansion sees it)."""
    env: list[dict[str, Any]] = []
    url = urlsplit(values.get("WILDROBOT_REDIS_URL", ""))
    if url.password is not None:
        if not k8s.redis_password_secret:
            raise ValueError(
                "the Redis URL has a password but WILDROBOT_K8S_REDIS_PASSWORD_SECRET is empty: "
                "the host pods would carry the password in their spec"
            )
        host = url.hostname or ""
        netloc = f":$(REDIS_PASSWORD)@{host}" + (f":{url.port}" if url.port else "")
        values = dict(values, WILDROBOT_REDIS_URL=urlunsplit(url._replace(netloc=netloc)))
        env.append(
            {
                "name": "REDIS_PASSWORD",
                "valueFrom": {
                    "secretKeyRef": {"name": k8s.redis_password_secret, "key": "password"}
                },
            }
        )
    return env + [{"name": k, "value": v} for k, v in values.items()]


def indexed_job(plan: LaunchPlan, k8s: KubernetesSettings) -> dict[str, Any]:
    """An Indexed Job of plan.num_hosts pods, one GPU host each.

    Pod i is `<name>-i.<name>` in DNS; process 0's pod is the coordinator. Each pod gets its
    process id from JOB_COMPLETION_INDEX. backoffLimit 0: a failed host fails the attempt, and
    the job's retry goes through the lease like any other (a new attempt, a new Job). The Job
    controller makes the Job the pods' owner, so they go with it (TTL or the launcher's delete).
    """
    name = plan.name
    coordinator = f"{name}-0.{name}.{k8s.namespace}.svc:{COORDINATOR_PORT}"
    env = host_env_vars(plan.host_env(coordinator), k8s)
    env.append({"name": "WILDROBOT_LOG_FORMAT", "value": "json"})
    resources: dict[str, dict[str, Any]] = {
        "requests": {"cpu": k8s.cpu, "memory": k8s.memory},
        "limits": {"memory": k8s.memory},
    }
    if k8s.gpus_per_host:
        resources["requests"]["nvidia.com/gpu"] = str(k8s.gpus_per_host)
        resources["limits"]["nvidia.com/gpu"] = str(k8s.gpus_per_host)
    pod_spec: dict[str, Any] = {
        "subdomain": name,
        "restartPolicy": "Never",
        "serviceAccountName": k8s.service_account,
        "automountServiceAccountToken": False,  # the hosts never call the Kubernetes API
        "securityContext": {
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationGracePeriodSeconds": int(STOP_GRACE_S),
        "containers": [
            {
                "name": "host",
                "image": k8s.image,
                "command": ["wildrobot-host", *plan.host_args()],
                "env": env,
                "ports": [{"name": "coordinator", "containerPort": COORDINATOR_PORT}],
                "resources": resources,
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                    "readOnlyRootFilesystem": True,
                },
                "volumeMounts": [
                    {"name": "artifacts", "mountPath": k8s.artifacts_mount},
                    {"name": "tmp", "mountPath": "/tmp"},
                ],
            }
        ],
        "volumes": [
            {"name": "artifacts", "persistentVolumeClaim": {"claimName": k8s.artifacts_claim}},
            {"name": "tmp", "emptyDir": {}},
        ],
    }
    if k8s.gpus_per_host:
        pod_spec["tolerations"] = [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        ]
    metadata: dict[str, Any] = {"name": name, "namespace": k8s.namespace, "labels": labels(plan)}
    if k8s.owner_pod_name and k8s.owner_pod_uid:
        metadata["ownerReferences"] = [
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": k8s.owner_pod_name,
                "uid": k8s.owner_pod_uid,
            }
        ]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "completionMode": "Indexed",
            "completions": plan.num_hosts,
            "parallelism": plan.num_hosts,
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": k8s.ttl_after_finished_s,
            "template": {"metadata": {"labels": labels(plan)}, "spec": pod_spec},
        },
    }


def headless_service(plan: LaunchPlan, k8s: KubernetesSettings, job_uid: str) -> dict[str, Any]:
    """The pods' DNS domain, owned by the Job (uid `job_uid`, known once it exists): the garbage
    collector deletes it with the Job. No blockOwnerDeletion, so the launcher needs no rights on
    jobs/finalizers."""
    name = plan.name
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": k8s.namespace,
            "labels": labels(plan),
            "ownerReferences": [
                {"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": job_uid}
            ],
        },
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,  # the coordinator must resolve before it is ready
            "selector": {"job-name": name},
            "ports": [{"name": "coordinator", "port": COORDINATOR_PORT}],
        },
    }
