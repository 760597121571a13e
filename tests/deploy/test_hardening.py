"""deploy/: the security and reliability settings of the rendered manifests and the compose files
(issue 28): Pod Security "restricted", locked-down containers, service-account tokens only for the
launcher, Redis behind a password from a Secret with maxmemory below its memory limit (the
rendered Redis command is run against a real redis-server), pinned images named once, the
dashboard deployed, gRPC published beyond loopback only with TLS, split liveness/readiness, and
one scrape config per platform."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from tests.deploy.kustomize import render
from tests.deploy.test_manifests import DEPLOY, ROOT, by_kind, container
from wildrobot.ops.stack import free_port, wait_for_port

OVERLAYS = ["base", "overlays/gpu"]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
SIZE_UNITS = {"": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "k": 10**3, "m": 10**6,
              "g": 10**9, "ki": 1 << 10, "mi": 1 << 20, "gi": 1 << 30}  # fmt: skip


def size(text: str) -> int:
    """Redis (3gb), Kubernetes (4Gi) and compose (4g) sizes in bytes."""
    number, unit = re.fullmatch(r"(\d+)([a-zA-Z]*)", str(text)).groups()
    return int(number) * SIZE_UNITS[unit.lower()]


def workloads(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] in ("Deployment", "StatefulSet", "Job", "DaemonSet")]


def pod_containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    pod = obj["spec"]["template"]["spec"]
    return pod["containers"] + pod.get("initContainers", [])


def env_of(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in c.get("env", [])}


class ComposeLoader(yaml.SafeLoader):
    """Reads compose's `!override` / `!reset` merge tags as plain values."""


ComposeLoader.add_constructor("!override", lambda loader, node: loader.construct_sequence(node))
ComposeLoader.add_constructor("!reset", lambda loader, node: None)


def compose(name: str = "compose.yaml") -> dict[str, Any]:
    return yaml.load((DEPLOY / name).read_text(), Loader=ComposeLoader)  # noqa: S506


# --- Kubernetes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_namespace_enforces_pod_security_restricted(overlay: str) -> None:
    namespace = by_kind(render(DEPLOY / "k8s" / overlay))[("Namespace", "wildrobot")]
    labels = namespace["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted", mode


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_locked_down(overlay: str) -> None:
    """What Pod Security "restricted" demands, plus a read-only root filesystem with /tmp as an
    emptyDir scratch volume, for every container of every workload."""
    found = 0
    for obj in workloads(render(DEPLOY / "k8s" / overlay)):
        pod = obj["spec"]["template"]["spec"]
        pod_security = pod.get("securityContext", {})
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for c in pod_containers(obj):
            found += 1
            where = f"{obj['metadata']['name']}/{c['name']}"
            sc = c.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not sc.get("capabilities", {}).get("add"), where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("privileged") is not True, where
            assert sc.get("runAsNonRoot", pod_security.get("runAsNonRoot")) is True, where
            assert sc.get("runAsUser", pod_security.get("runAsUser", 0)) != 0, where
            seccomp = sc.get("seccompProfile", pod_security.get("seccompProfile", {}))
            assert seccomp.get("type") == "RuntimeDefault", where
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            assert "emptyDir" in volumes[mounts["/tmp"]], where
    assert found >= 3  # redis, server, worker


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_launcher_gets_a_service_account_token(overlay: str) -> None:
    """The pod that launches multi-host jobs through the Kubernetes API gets a token (from its
    own service account); no other pod does, whether the pod or its account says so."""
    objects = render(DEPLOY / "k8s" / overlay)
    objs = by_kind(objects)
    launchers = 0
    for obj in workloads(objects):
        pod = obj["spec"]["template"]["spec"]
        account = pod.get("serviceAccountName", "default")
        mounted = pod.get("automountServiceAccountToken")
        if mounted is None:  # the pod defers to its service account, which defaults to true
            mounted = objs.get(("ServiceAccount", account), {}).get(
                "automountServiceAccountToken", True
            )
        launches = any(
            env_of(c).get("WILDROBOT_MULTIHOST_LAUNCHER", {}).get("value") == "kubernetes"
            for c in pod["containers"]
        )
        name = obj["metadata"]["name"]
        if launches:
            launchers += 1
            assert mounted is True and account != "default", name
        else:
            assert mounted is False, name
    assert launchers == 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_redis_asks_for_the_secret_password_and_bounds_its_memory(overlay: str) -> None:
    objs = by_kind(render(DEPLOY / "k8s" / overlay))
    redis_set = objs[("StatefulSet", "wildrobot-redis")]
    r = container(redis_set, "redis")
    secret = r["env"][0]["valueFrom"]["secretKeyRef"]
    assert r["env"][0]["name"] == "REDISCLI_AUTH" and secret["name"] == "wildrobot-redis"
    assert "requirepass $REDISCLI_AUTH" in r["command"][2]  # on stdin, not on the command line
    assert not any("requirepass" in a for a in r["args"])
    args = r["args"]
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    maxmemory = size(args[args.index("--maxmemory") + 1])
    limit = size(r["resources"]["limits"]["memory"])
    assert 0 < maxmemory <= 0.8 * limit  # room for the AOF rewrite's fork and client buffers
    assert "redis-cli ping | grep -q PONG" in " ".join(r["readinessProbe"]["exec"]["command"])

    for kind, name, cname in [("Deployment", "wildrobot-server", "server"),
                              ("Deployment", "wildrobot-worker", "worker")]:  # fmt: skip
        c = container(objs[(kind, name)], cname)
        names = [e["name"] for e in c["env"]]
        env = env_of(c)
        assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": "wildrobot-redis",
            "key": secret["key"],
        }
        # Kubernetes expands $(VAR) only from variables defined before it.
        assert names.index("REDIS_PASSWORD") < names.index("WILDROBOT_REDIS_URL"), name
        assert env["WILDROBOT_REDIS_URL"]["value"].startswith("redis://:$(REDIS_PASSWORD)@")


def run_redis(argv: list[str], env: dict[str, str], data: Path) -> subprocess.Popen:
    """Runs a manifest's Redis command line here, on a free loopback port, data in `data`."""
    argv = [str(data) if a == "/data" else a for a in argv]
    port = free_port()
    proc = subprocess.Popen(
        [*argv, "--port", str(port), "--bind", "127.0.0.1"],
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", **env},
        stdout=subprocess.DEVNULL,
    )
    proc.port = port  # type: ignore[attr-defined]
    wait_for_port(port, proc, 20, "redis-server")
    return proc


def refuses_without_password(port: int) -> bool:
    """A client that sends no password gets NOAUTH (raw RESP: redis-py retries for seconds)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64).startswith(b"-NOAUTH")


def assert_password_and_noeviction(proc: subprocess.Popen, password: str, maxmemory: int) -> None:
    port = proc.port  # type: ignore[attr-defined]
    assert refuses_without_password(port)
    with redis.Redis(port=port, password=password, decode_responses=True) as client:
        assert client.config_get("maxmemory")["maxmemory"] == str(maxmemory)
        assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
        assert client.config_get("appendonly")["appendonly"] == "yes"
    cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
    assert password.encode() not in cmdline


@pytest.mark.redis
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_the_kubernetes_redis_command_really_requires_the_password(tmp_path: Path) -> None:
    r = container(by_kind(render(DEPLOY / "k8s" / "base"))[("StatefulSet", "wildrobot-redis")],
                  "redis")  # fmt: skip
    password = "k8s-secret-value-0123456789"
    proc = run_redis([*r["command"], *r["args"]], {"REDISCLI_AUTH": password}, tmp_path)
    try:
        args = r["args"]
        assert_password_and_noeviction(proc, password, size(args[args.index("--maxmemory") + 1]))
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_are_pinned_and_named_once(overlay: str) -> None:
    objects = render(DEPLOY / "k8s" / overlay)
    for obj in workloads(objects):
        for c in pod_containers(obj):
            image = c["image"]
            assert re.fullmatch(r"[\w./-]+(:[\w.-]+|@sha256:[0-9a-f]{64})", image), image
            assert not image.endswith(":latest"), image
            if image.startswith("wildrobot-train"):
                assert image.endswith(f":{VERSION}"), image  # the release's version
            else:
                assert re.search(r":\d+\.\d+\.\d+", image), image  # an exact upstream release
    # The multi-host pods run the worker's image: whoever launches them is told exactly that.
    worker = container(by_kind(objects)[("Deployment", "wildrobot-worker")], "worker")
    told = [
        env_of(c)["WILDROBOT_K8S_IMAGE"]["value"]
        for obj in workloads(objects)
        for c in pod_containers(obj)
        if "WILDROBOT_K8S_IMAGE" in env_of(c)
    ]
    assert told and set(told) == {worker["image"]}
    # The images' tags are written only in the kustomizations, never in a workload.
    for path in (DEPLOY / "k8s").rglob("*.yaml"):
        if path.name != "kustomization.yaml":
            assert not re.search(r"image: \S+:", path.read_text()), path


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_dashboard_is_served_and_probes_split_liveness_from_readiness(overlay: str) -> None:
    objs = by_kind(render(DEPLOY / "k8s" / overlay))
    server = container(objs[("Deployment", "wildrobot-server")], "server")
    ports = {p["name"]: p["containerPort"] for p in server["ports"]}
    assert str(ports["http"]) == env_of(server)["WILDROBOT_HTTP_PORT"]["value"] == "8080"
    service_ports = {p["name"]: p for p in objs[("Service", "wildrobot-server")]["spec"]["ports"]}
    assert service_ports["http"]["targetPort"] == "http"
    # Liveness must not follow Redis (an outage would restart every front end); readiness does.
    # The health service's "" goes NOT_SERVING without Redis: liveness names `liveness`.
    live, ready = server["livenessProbe"], server["readinessProbe"]
    assert live["grpc"] == {"port": 50051, "service": "liveness"}
    assert ready["grpc"] == {"port": 50051, "service": "readiness"}
    worker = container(objs[("Deployment", "wildrobot-worker")], "worker")
    probe = worker["livenessProbe"]["httpGet"]
    assert probe["port"] == "metrics" and probe["path"] == "/metrics"
    assert env_of(worker)["WILDROBOT_METRICS_PORT"]["value"] == "9465"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) not on PATH")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_test_renderer_matches_kubectl_kustomize(overlay: str) -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", str(DEPLOY / "k8s" / overlay)],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip

    def normal(node: Any) -> Any:  # kubectl may reorder a patched list of named entries
        if isinstance(node, dict):
            return {k: normal(v) for k, v in node.items()}
        if isinstance(node, list) and all(isinstance(x, dict) and "name" in x for x in node):
            return sorted((normal(x) for x in node), key=lambda x: x["name"])
        return [normal(x) for x in node] if isinstance(node, list) else node

    theirs = {k: normal(v) for k, v in by_kind([d for d in yaml.safe_load_all(out) if d]).items()}
    ours = {k: normal(v) for k, v in by_kind(render(DEPLOY / "k8s" / overlay)).items()}
    assert ours == theirs


# --- Docker Compose and images ------------------------------------------------------------------


def test_compose_redis_has_a_password_from_the_env_file_and_bounded_memory() -> None:
    services = compose()["services"]
    redis_service = services["redis"]
    assert redis_service["env_file"] == "./secrets/redis.env"
    assert "requirepass $$REDISCLI_AUTH" in redis_service["entrypoint"][2]
    assert not any("requirepass" in str(a) for a in redis_service["command"])
    command = redis_service["command"]
    maxmemory = size(command[command.index("--maxmemory") + 1])
    assert 0 < maxmemory <= 0.8 * size(redis_service["mem_limit"])
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert "grep -q PONG" in redis_service["healthcheck"]["test"][1]
    assert redis_service["user"] == "999:999"  # its entrypoint is replaced: never root
    for name, service in services.items():
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
    for name, service in services.items():
        assert "WILDROBOT_REDIS_URL" not in service.get("environment", {}), name
        if name != "redis":
            assert service["env_file"] == "./secrets/redis.env", name
    assert (DEPLOY / ".gitignore").read_text().split() == ["secrets/"]
    assert (
        not (DEPLOY / "secrets").exists()
        or not subprocess.run(
            ["git", "ls-files", "deploy/secrets"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    )


@pytest.mark.redis
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_the_compose_redis_command_really_requires_the_password(tmp_path: Path) -> None:
    redis_service = compose()["services"]["redis"]
    unescaped = [str(a).replace("$$", "$") for a in redis_service["entrypoint"]]  # as compose does
    password = "compose-secret-value-0123456789"
    proc = run_redis([*unescaped, *redis_service["command"]], {"REDISCLI_AUTH": password}, tmp_path)
    try:
        command = redis_service["command"]
        maxmemory = size(command[command.index("--maxmemory") + 1])
        assert_password_and_noeviction(proc, password, maxmemory)
    finally:
        proc.terminate()
        proc.wait(10)


def published(service: dict[str, Any]) -> dict[int, str]:
    """Container port -> the host address it is published on ("" for every interface)."""
    out = {}
    for entry in service.get("ports", []):
        parts = str(entry).split(":")
        host = parts[0] if len(parts) == 3 else ""
        out[int(parts[-1])] = host
    return out


def test_compose_publishes_on_loopback_unless_tls_is_on() -> None:
    plain, tls = compose(), compose("compose.tls.yaml")
    for name, service in plain["services"].items():
        assert set(published(service).values()) <= {"127.0.0.1"}, name
    server = plain["services"]["server"]
    assert {50051, 8080} <= set(published(server))  # gRPC and the dashboard
    assert "WILDROBOT_TLS_CERT_FILE" not in server["environment"]

    tls_server = tls["services"]["server"]
    env = tls_server["environment"]
    for key, secret in [("WILDROBOT_TLS_CERT_FILE", "wildrobot_tls_cert"),
                        ("WILDROBOT_TLS_KEY_FILE", "wildrobot_tls_key")]:  # fmt: skip
        assert env[key] == f"/run/secrets/{secret}"
        assert secret in tls_server["secrets"]
        assert tls["secrets"][secret]["file"].startswith("./secrets/")
    assert set(server["secrets"]) <= set(tls_server["secrets"])  # the override keeps the tokens
    ports = published(tls_server)
    assert ports[50051] == ports[8080] == ""  # every interface, with TLS
    assert ports[9464] == "127.0.0.1"  # metrics carry no token but stay local
    assert "ports: !override" in (DEPLOY / "compose.tls.yaml").read_text()  # replace, not append
    # The plaintext health check cannot talk to a TLS port.
    assert "wildrobot.server.healthcheck" not in " ".join(tls_server["healthcheck"]["test"])
    assert "50051" in " ".join(tls_server["healthcheck"]["test"])


def test_compose_workers_have_a_health_check_and_images_are_pinned() -> None:
    services = compose()["services"]
    assert services["server"]["healthcheck"]["test"][4:] == ["--ready", "127.0.0.1:50051"]
    workers = {n: s for n, s in services.items() if n.startswith("worker")}
    for name, w in workers.items():
        test = " ".join(w["healthcheck"]["test"])
        port = w["environment"]["WILDROBOT_METRICS_PORT"]
        assert f"127.0.0.1:{port}/metrics" in test, name
    for name, service in services.items():
        image = service["image"]
        assert not image.endswith(":latest") and ":" in image, name
        if image.startswith("wildrobot-train"):
            assert image.endswith(f":{VERSION}"), name
        else:
            assert re.search(r":\d+\.\d+\.\d+", image), name
    k8s_redis = container(by_kind(render(DEPLOY / "k8s" / "base"))[("StatefulSet",
                          "wildrobot-redis")], "redis")["image"]  # fmt: skip
    assert services["redis"]["image"] == k8s_redis  # one Redis version everywhere


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.worker"])
def test_dockerfile_base_image_is_an_exact_release(name: str) -> None:
    text = (DEPLOY / name).read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M).group(1)
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base), base
    assert all(
        line.split()[1] == "${PYTHON_IMAGE}" for line in re.findall(r"^FROM .+$", text, re.M)
    )


def test_the_front_end_image_exposes_the_dashboard() -> None:
    exposed = re.search(r"^EXPOSE (.+)$", (DEPLOY / "Dockerfile").read_text(), re.M).group(1)
    assert {"50051", "8080", "9464"} <= set(exposed.split())


def test_one_scrape_config_per_platform() -> None:
    scrape = {p.stem: yaml.safe_load(p.read_text()) for p in (DEPLOY / "prometheus").glob("*.yml")}
    assert set(scrape) == {"compose", "kubernetes"}
    for config in scrape["compose"]["scrape_configs"]:
        assert set(config) == {"job_name", "static_configs"}, config["job_name"]
    targets = {
        t for c in scrape["compose"]["scrape_configs"] for t in c["static_configs"][0]["targets"]
    }
    services = compose()["services"]
    assert {t.split(":")[0] for t in targets} <= set(services)
    for config in scrape["kubernetes"]["scrape_configs"]:
        assert "kubernetes_sd_configs" in config and "static_configs" not in config
