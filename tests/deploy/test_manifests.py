"""deploy/: the Kubernetes manifests render (kustomize semantics) and validate against the
Kubernetes OpenAPI schemas (kubernetes-validate, offline, strict); compose, the Dockerfiles, the
scrape config and the dashboard are checked against what the code actually reads and serves."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_validate import utils as k8s

from tests.deploy.kustomize import render, strategic_merge
from wildrobot.server.config import ServerConfig
from wildrobot.server.metrics import ServerMetrics
from wildrobot.workers.config import WorkerConfig
from wildrobot.workers.launch import LAUNCHER_ENV, KubernetesSettings
from wildrobot.workers.metrics import WorkerMetrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S_VERSIONS = ("1.29.0", "1.33.0")  # oldest with native gRPC probes GA + a current one
# REDIS_PASSWORD: from the Secret, only to build WILDROBOT_REDIS_URL (`$(REDIS_PASSWORD)`).
SERVER_ENV = {f"WILDROBOT_{n.upper()}" for n in ServerConfig.model_fields} | {
    "WILDROBOT_TOKENS_FILE",
    "REDIS_PASSWORD",
}
WORKER_ENV = (
    {f"WILDROBOT_{n.upper()}" for n in WorkerConfig.model_fields}
    | {f"WILDROBOT_K8S_{n.upper()}" for n in KubernetesSettings.__dataclass_fields__}
    | {LAUNCHER_ENV, "REDIS_PASSWORD", "HOME"}
)
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def by_kind(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def validate_all(objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        for version in K8S_VERSIONS:
            k8s.validate(obj, version, strict=True)  # raises ValidationError


def container(obj: dict[str, Any], name: str) -> dict[str, Any]:
    spec = obj["spec"]["template"]["spec"]
    return next(c for c in spec["containers"] if c["name"] == name)


def env_names(c: dict[str, Any]) -> set[str]:
    return {e["name"] for e in c.get("env", [])}


@pytest.mark.parametrize("overlay", ["base", "overlays/gpu"])
def test_kustomizations_render_and_validate(overlay: str) -> None:
    objects = render(DEPLOY / "k8s" / overlay)
    validate_all(objects)
    objs = by_kind(objects)
    assert {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"} == {
        "wildrobot"
    }

    redis = objs[("StatefulSet", "wildrobot-redis")]
    args = container(redis, "redis")["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--appendfsync") + 1] == "everysec"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    assert args[args.index("--dir") + 1] == "/data"
    assert redis["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"

    server = objs[("Deployment", "wildrobot-server")]
    s = container(server, "server")
    assert s["readinessProbe"]["grpc"]["port"] == 50051
    assert env_names(s) <= SERVER_ENV, env_names(s) - SERVER_ENV
    assert "WILDROBOT_TOKENS" not in env_names(s)  # tokens come from the mounted Secret
    volumes = {v["name"]: v for v in server["spec"]["template"]["spec"]["volumes"]}
    assert volumes["tokens"]["secret"]["secretName"] == "wildrobot-tokens"
    assert objs[("PodDisruptionBudget", "wildrobot-server")]["spec"]["minAvailable"] == 1
    assert objs[("PersistentVolumeClaim", "wildrobot-artifacts")]["spec"]["accessModes"] == [
        "ReadWriteMany"
    ]
    for deployment in (server, objs[("Deployment", "wildrobot-worker")]):
        for c in deployment["spec"]["template"]["spec"]["containers"]:
            assert {"requests", "limits"} <= set(c["resources"]), c["name"]

    # Only pods labelled as Redis clients reach Redis; the front end and workers carry it.
    policy = objs[("NetworkPolicy", "wildrobot-redis")]["spec"]
    assert policy["podSelector"]["matchLabels"] == redis["spec"]["selector"]["matchLabels"]
    allowed = policy["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    worker = objs[("Deployment", "wildrobot-worker")]
    for deployment in (server, worker):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert allowed.items() <= labels.items()
    w = container(worker, "worker")
    assert env_names(w) <= WORKER_ENV, env_names(w) - WORKER_ENV
    gpus = w["resources"]["limits"].get("nvidia.com/gpu")
    if overlay == "overlays/gpu":
        assert gpus == 1 and w["resources"]["requests"]["nvidia.com/gpu"] == 1
        assert w["image"] == f"wildrobot-train-worker:{VERSION}"
        assert w["command"] == ["wildrobot-worker"]  # the base's fields survive the patch
    else:
        assert gpus is None
    # Multi-host jobs: the GPU workers leave them to a launcher with no GPU and no Role of
    # their own; only the launcher has a token and the rights to create the hosts' Job.
    launcher = objs[("Deployment", "wildrobot-launcher")]
    lc = container(launcher, "launcher")
    assert env_names(lc) <= WORKER_ENV, env_names(lc) - WORKER_ENV
    env = {e["name"]: e.get("value") for e in lc["env"]}
    assert env["WILDROBOT_MULTIHOST"] == "only" and env["WILDROBOT_KINDS"] == "ppo"
    assert env["WILDROBOT_MULTIHOST_LAUNCHER"] == "kubernetes"
    assert {e["name"]: e.get("value") for e in w["env"]}["WILDROBOT_MULTIHOST"] == "skip"
    for limits in lc["resources"].values():
        assert "nvidia.com/gpu" not in limits
    # merged by name into the base's env
    assert env["WILDROBOT_K8S_GPUS_PER_HOST"] == ("1" if overlay == "overlays/gpu" else "0")
    accounts = {
        name: objs[("ServiceAccount", d["spec"]["template"]["spec"]["serviceAccountName"])]
        for name, d in (("worker", worker), ("launcher", launcher))
    }
    assert accounts["worker"].get("automountServiceAccountToken") is False
    assert accounts["launcher"]["automountServiceAccountToken"] is True
    bindings = [o for (kind, _), o in objs.items() if kind in ("RoleBinding", "ClusterRoleBinding")]
    assert {s["name"] for b in bindings for s in b["subjects"]} == {"wildrobot-launcher"}
    assert allowed.items() <= launcher["spec"]["template"]["metadata"]["labels"].items()


def test_strategic_merge_merges_named_lists_and_replaces_others() -> None:
    base = {"c": [{"name": "a", "x": 1, "y": [1, 2]}, {"name": "b"}], "k": {"p": 1}}
    patch = {"c": [{"name": "a", "y": [3]}, {"name": "z"}], "k": {"q": 2}}
    assert strategic_merge(base, patch) == {
        "c": [{"name": "a", "x": 1, "y": [3]}, {"name": "b"}, {"name": "z"}],
        "k": {"p": 1, "q": 2},
    }


def test_an_invalid_manifest_is_refused() -> None:
    """The validation has teeth: a misspelled field fails the strict schema."""
    bad = render(DEPLOY / "k8s" / "base")
    server = by_kind(bad)[("Deployment", "wildrobot-server")]
    container(server, "server")["readinessProbe"]["grcp"] = {"port": 1}
    with pytest.raises(k8s.ValidationError):
        validate_all([server])


def test_compose_file() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    redis = services["redis"]
    command = redis["command"]
    assert command[command.index("--appendfsync") + 1] == "everysec"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert command[command.index("--appendonly") + 1] == "yes"
    volume = redis["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]  # a named volume, not a bind mount

    server = services["server"]
    assert "wildrobot.server.healthcheck" in server["healthcheck"]["test"]
    assert set(server["environment"]) <= SERVER_ENV
    assert "WILDROBOT_TOKENS" not in server["environment"]
    secret = compose["secrets"][server["secrets"][0]]
    assert server["environment"]["WILDROBOT_TOKENS_FILE"] == f"/run/secrets/{server['secrets'][0]}"
    assert secret["file"].startswith("./secrets/")
    assert (DEPLOY / ".gitignore").read_text().split() == ["secrets/"]

    workers = {name: s for name, s in services.items() if name.startswith("worker")}
    assert len(workers) >= 1
    gpus = []
    for name, w in workers.items():
        assert set(w["environment"]) <= WORKER_ENV, name
        assert w["env_file"] == server["env_file"] == "./secrets/redis.env"  # the Redis URL
        devices = w["deploy"]["resources"]["reservations"]["devices"]
        assert len(devices) == 1 and devices[0]["capabilities"] == ["gpu"]
        gpus += devices[0]["device_ids"]
        assert (
            "artifacts:/artifacts" in w["volumes"] and "artifacts:/artifacts" in server["volumes"]
        )
    assert len(gpus) == len(set(gpus)) == len(workers)  # one worker per GPU


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.worker"])
def test_dockerfiles(name: str) -> None:
    text = (DEPLOY / name).read_text()
    stages = re.findall(r"^FROM \S+(?: AS (\w+))?", text, re.M)
    assert len(stages) >= 2  # multi-stage
    assert "-c constraints.txt" in text
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and not users[-1].startswith(("root", "0"))
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for path in source.split():
            assert (ROOT / path).exists(), path
    assert ('".[cuda]"' in text) == (name == "Dockerfile.worker")
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "tests"} <= set(ignored)


def test_dashboard_and_scrape_config_name_real_series() -> None:
    served = set()
    for registry in (ServerMetrics().registry, WorkerMetrics().registry):
        for family in registry.collect():
            served |= {family.name, *(f"{family.name}{s}" for s in ("_total", "_bucket"))}
    dashboard = json.loads((DEPLOY / "grafana" / "wildrobot-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {name for e in exprs for name in re.findall(r"\bwildrobot_\w+", e)}
    assert used and used <= served, used - served
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "compose.yml").read_text())
    jobs = {c["job_name"]: c for c in scrape["scrape_configs"]}
    targets = jobs["wildrobot-server"]["static_configs"][0]["targets"]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert targets == [
        f"server:{compose['services']['server']['environment']['WILDROBOT_METRICS_PORT']}"
    ]


def test_a_scraped_server_listens_for_metrics_beyond_loopback() -> None:
    # The server's --metrics-host defaults to 127.0.0.1 (like --host); a deployment that sets a
    # metrics port for Prometheus in another container or pod must widen it, or nothing scrapes.
    assert ServerConfig().metrics_host == "127.0.0.1"
    server = container(
        by_kind(render(DEPLOY / "k8s" / "base"))[("Deployment", "wildrobot-server")], "server"
    )
    env = {e["name"]: e.get("value") for e in server["env"]}
    assert "WILDROBOT_METRICS_PORT" in env and env["WILDROBOT_METRICS_HOST"] == "0.0.0.0"
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["server"]
    assert compose["environment"]["WILDROBOT_METRICS_HOST"] == "0.0.0.0"
