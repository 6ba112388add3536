"""deploy/k8s: valid Kubernetes objects that wire the image, probes, services and budgets the
way README "Operators" describes."""

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from pydantic import ValidationError

from app.config import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"
KUBERNETES_VERSION = "1.29"  # the oldest release still widely supported by cloud vendors
ROLES = ("api", "settlement", "worker")
PORTS = {"api": 8000, "settlement": 9000}


def _load() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted(K8S.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


DOCS = _load()


def one(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in DOCS if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def pod(kind: str, name: str) -> dict[str, Any]:
    return dict(one(kind, name)["spec"]["template"]["spec"])


def container(kind: str, name: str) -> dict[str, Any]:
    containers = pod(kind, name)["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def graceful_s() -> int:
    match = re.search(r"^GRACEFUL_S=(\d+)$", (DEPLOY / "entrypoint.sh").read_text(), re.M)
    assert match
    return int(match.group(1))


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_object_is_valid_for_kubernetes(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests


def test_every_pod_runs_the_one_image_as_non_root_with_settings() -> None:
    workloads = [("Deployment", f"creditpool-{r}", r) for r in ROLES]
    for kind, name, role in [*workloads, ("Job", "creditpool-migrate", "migrate")]:
        spec, main = pod(kind, name), container(kind, name)
        assert main["image"] == "creditpool"
        assert main["args"] == [role]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == 10001  # the Dockerfile's USER
        assert main["securityContext"]["allowPrivilegeEscalation"] is False
        assert main["securityContext"]["readOnlyRootFilesystem"] is True
        assert main["resources"]["requests"]["cpu"]
        sources = [next(iter(ref.values()))["name"] for ref in main["envFrom"]]
        # Each workload its own Secret, after the config (the later source wins).
        assert sources == ["creditpool-config", f"creditpool-{role}-secrets"]


def _environment(kind: str, name: str, role: str) -> dict[str, str]:
    """What the process sees: the config, its Secret, then its own env (which win)."""
    env = one("ConfigMap", "creditpool-config")["data"] | secret(role)
    return env | {
        i["name"]: i["value"] for i in container(kind, name).get("env", []) if "value" in i
    }


def secret(role: str) -> dict[str, str]:
    return dict(one("Secret", f"creditpool-{role}-secrets")["stringData"])


def test_config_and_secrets_hold_only_real_settings() -> None:
    config = one("ConfigMap", "creditpool-config")["data"]
    # DB_DIRECT_HOST is the migration Job's DB_HOST; Settings ignore it.
    assert set(config) - {"DB_DIRECT_HOST"} <= set(Settings.model_fields)
    for role in (*ROLES, "migrate"):
        assert set(secret(role)) <= set(Settings.model_fields), role
    assert config["DB_PORT"] == "6432"
    settings = Settings(**config | {"ENVIRONMENT": "dev", "DATABASE_URL": None})
    assert settings.behind_pgbouncer
    # The placeholders cannot go live: production refuses them.
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(**config | secret("api"))


def test_each_process_gets_its_own_role_and_only_its_secrets() -> None:
    """Only the api signs tokens; only the migration holds the owner's password."""
    users = {
        role: _environment(kind, name, role)["POSTGRES_USER"]
        for kind, name, role in [
            *[("Deployment", f"creditpool-{r}", r) for r in ROLES],
            ("Job", "creditpool-migrate", "migrate"),
        ]
    }
    assert users == {
        "api": "creditpool_api",
        "worker": "creditpool_api",
        "settlement": "creditpool_settlement",
        "migrate": "replace-me",  # the owner, from its Secret
    }
    assert set(secret("api")) == {"SECRET_KEY", "INTERNAL_TOKEN", "POSTGRES_PASSWORD"}
    assert (
        set(secret("worker"))
        == set(secret("settlement"))
        == {
            "INTERNAL_TOKEN",
            "POSTGRES_PASSWORD",
        }
    )
    assert {"API_DB_PASSWORD", "SETTLEMENT_DB_PASSWORD"} <= set(secret("migrate"))
    assert "SECRET_KEY" not in secret("migrate")


def test_api_and_settlement_probe_health_and_readiness_and_drain() -> None:
    for role, port in PORTS.items():
        name = f"creditpool-{role}"
        main = container("Deployment", name)
        assert main["ports"] == [{"name": "http", "containerPort": port}]
        assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        sleep = int(main["lifecycle"]["preStop"]["exec"]["command"][-1])
        assert pod("Deployment", name)["terminationGracePeriodSeconds"] > sleep + graceful_s()


def test_worker_liveness_is_its_own_heartbeat_not_redis() -> None:
    worker = container("Deployment", "creditpool-worker")
    check = ["python", "-m", "app", "worker-alive"]
    assert worker["livenessProbe"]["exec"]["command"] == check
    assert pod("Deployment", "creditpool-worker")["terminationGracePeriodSeconds"] > graceful_s()


def test_services_select_their_pods_and_settlement_stays_inside() -> None:
    for role, port in PORTS.items():
        service = one("Service", f"creditpool-{role}")["spec"]
        labels = one("Deployment", f"creditpool-{role}")["spec"]["template"]["metadata"]["labels"]
        assert service["selector"].items() <= labels.items()
        assert service["ports"] == [{"name": "http", "port": port, "targetPort": "http"}]
        assert service["type"] == "ClusterIP"
    url = urlsplit(one("ConfigMap", "creditpool-config")["data"]["SETTLEMENT_URL"])
    assert (url.hostname, url.port) == ("creditpool-settlement", 9000)
    policy = one("NetworkPolicy", "creditpool-settlement")["spec"]
    allowed = {
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        for peer in policy["ingress"][0]["from"]
    }
    assert allowed == {"api", "worker"}


def test_migration_job_runs_once_straight_against_postgres() -> None:
    job = one("Job", "creditpool-migrate")["spec"]
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    assert job["backoffLimit"] >= 1
    env = {item["name"]: item for item in container("Job", "creditpool-migrate")["env"]}
    assert env["DB_PORT"]["value"] == "5432"
    assert env["DB_HOST"]["valueFrom"]["configMapKeyRef"]["key"] == "DB_DIRECT_HOST"
    # README: `kubectl apply -l 'app.kubernetes.io/component in (config, migrate)'` goes first.
    first = {
        d["kind"]
        for d in DOCS
        if d["metadata"].get("labels", {}).get("app.kubernetes.io/component")
        in {"config", "migrate"}
    }
    assert first == {"ConfigMap", "Secret", "Job"}


def test_api_autoscales_and_keeps_a_pod_through_disruptions() -> None:
    hpa = one("HorizontalPodAutoscaler", "creditpool-api")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "creditpool-api",
    }
    assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"
    for role in ("api", "settlement"):
        budget = one("PodDisruptionBudget", f"creditpool-{role}")["spec"]
        labels = one("Deployment", f"creditpool-{role}")["spec"]["template"]["metadata"]["labels"]
        assert budget["selector"]["matchLabels"].items() <= labels.items()
        # Lower than the replicas, or node drains could never evict a pod.
        assert budget["minAvailable"] < one("Deployment", f"creditpool-{role}")["spec"]["replicas"]
