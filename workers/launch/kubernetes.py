"""A multi-host attempt on Kubernetes: an Indexed Job and its headless Service (manifests.py),
created, watched and deleted through the official `kubernetes` client with the worker pod's
service account.

What the launcher's Role needs (deploy/k8s/base/multihost.yaml): jobs create/get/delete and
services create. Nothing else: the Service and the pods are owned by the Job, so the garbage
collector deletes them with it; the pods' progress is read from the Job's status (ready,
succeeded, failed), never from the pods.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from .manifests import KubernetesSettings, headless_service, indexed_job
from .plan import EXIT_STOPPED, STOP_GRACE_S, LaunchFailed, LaunchPlan

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 30
STALE_ATTEMPTS = 16  # how many earlier attempts' Jobs a new attempt deletes (by name)


def in_cluster_client() -> Any:
    """An ApiClient with the pod's service account token and CA (the in-cluster config)."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException as exc:
        raise LaunchFailed(
            f"num_hosts > 1 on Kubernetes: not running in a cluster ({exc})"
        ) from None
    return client.ApiClient()


def _not_found(exc: Exception) -> bool:
    return getattr(exc, "status", None) == 404


class KubernetesHostGroup:
    """The hosts of one attempt, seen through their Job's status."""

    def __init__(
        self,
        batch: Any,
        plan: LaunchPlan,
        k8s: KubernetesSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._batch = batch
        self._plan = plan
        self._k8s = k8s
        self._clock = clock
        self._created = clock()
        self._placed = False  # every pod was Ready once: the scheduling timeout is over
        self._stopping = False

    def poll(self) -> int | None:
        from kubernetes.client import ApiException

        try:
            job = self._batch.read_namespaced_job(
                self._plan.name, self._k8s.namespace, _request_timeout=REQUEST_TIMEOUT_S
            )
        except ApiException as exc:
            if not _not_found(exc):
                raise
            if self._stopping:
                return EXIT_STOPPED
            raise LaunchFailed(f"Job {self._plan.name} was deleted from outside") from None
        status = job.status
        hosts = self._plan.num_hosts
        succeeded, failed = status.succeeded or 0, status.failed or 0
        if succeeded >= hosts:
            return 0
        if failed:
            return EXIT_STOPPED if self._stopping else 1
        if self._stopping:
            return None if status.active else EXIT_STOPPED
        if not self._placed:
            ready = (status.ready or 0) + succeeded
            if ready >= hosts:
                self._placed = True
            elif self._clock() - self._created > self._k8s.schedule_timeout_s:
                self.kill()
                raise LaunchFailed(
                    f"scheduling timeout: {ready} of {hosts} host pods of Job {self._plan.name} "
                    f"were ready after {self._k8s.schedule_timeout_s:g} s "
                    f"(WILDROBOT_K8S_SCHEDULE_TIMEOUT_S); the pool has no room for {hosts} "
                    f"pods of {self._k8s.gpus_per_host} GPU(s) each; the Job was deleted"
                )
        return None

    def stop(self) -> None:
        # Deleting the Job sends SIGTERM to every pod; process 0 checkpoints, all stop.
        self._stopping = True
        self._delete(int(STOP_GRACE_S))

    def kill(self) -> None:
        self._delete(0)

    def _delete(self, grace_s: int) -> None:
        from kubernetes.client import ApiException

        try:  # pods and the Service go with the Job (owner references, garbage collector)
            self._batch.delete_namespaced_job(
                self._plan.name,
                self._k8s.namespace,
                grace_period_seconds=grace_s,
                propagation_policy="Foreground",
                _request_timeout=REQUEST_TIMEOUT_S,
            )
        except ApiException as exc:
            if not _not_found(exc):  # already gone is fine
                raise


class KubernetesHostLauncher:
    """Creates the Job, then the Service owned by it. `api_client`: a kubernetes ApiClient
    (default: the in-cluster one, made at the first start)."""

    def __init__(
        self,
        k8s: KubernetesSettings,
        api_client: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.k8s = k8s
        self._api_client = api_client
        self._clock = clock

    def start(self, plan: LaunchPlan) -> KubernetesHostGroup:
        from kubernetes import client

        if self._api_client is None:
            self._api_client = in_cluster_client()
        batch = client.BatchV1Api(self._api_client)
        core = client.CoreV1Api(self._api_client)
        namespace = self.k8s.namespace
        # Earlier attempts of this job are stale (their lease is gone): a Job of one whose
        # launcher died would hold its scheduled pods' GPUs with no one to time it out.
        for attempt in range(max(1, plan.attempt - STALE_ATTEMPTS), plan.attempt):
            KubernetesHostGroup(batch, replace(plan, attempt=attempt), self.k8s).kill()
        job = batch.create_namespaced_job(
            namespace, indexed_job(plan, self.k8s), _request_timeout=REQUEST_TIMEOUT_S
        )
        group = KubernetesHostGroup(batch, plan, self.k8s, self._clock)
        try:
            core.create_namespaced_service(
                namespace,
                headless_service(plan, self.k8s, job.metadata.uid),
                _request_timeout=REQUEST_TIMEOUT_S,
            )
        except BaseException:
            group.kill()
            raise
        log.info("job %s: Indexed Job %s (%d hosts)", plan.job_id, plan.name, plan.num_hosts)
        return group
