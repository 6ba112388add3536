"""deploy/docker-compose.yml as Compose itself resolves it (`config` needs no Docker engine),
with the .env an operator makes from .env.example."""

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
MISSING = (
    "Docker Compose is not installed. `make test` (and so .ci/run) installs Debian's "
    "docker-compose with apt-get when run as root (.ci/system-deps); it needs no Docker engine"
)
APPS = ("api", "settlement", "worker")
SECRET = "operator-secret-" + "x" * 32
SECRETS = {
    "POSTGRES_PASSWORD": "owner-password",
    "API_DB_PASSWORD": "api-password",
    "SETTLEMENT_DB_PASSWORD": "settlement-password",
    "SECRET_KEY": SECRET,
    "INTERNAL_TOKEN": SECRET + "-internal",
}


def compose_command() -> list[str]:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    if legacy := shutil.which("docker-compose"):
        return [legacy]
    pytest.fail(MISSING)


def resolve(tmp_path: Path, **env_file: str) -> subprocess.CompletedProcess[str]:
    """`compose config` on a copy of deploy/ whose .env is .env.example plus `env_file`."""
    shutil.copytree(DEPLOY, tmp_path / "deploy")
    lines = (ROOT / ".env.example").read_text().splitlines()
    settings = [line for line in lines if line.split("=", 1)[0] not in env_file]
    settings += [f"{name}={value}" for name, value in env_file.items()]
    (tmp_path / "deploy" / ".env").write_text("\n".join(settings) + "\n")
    return subprocess.run(
        [*compose_command(), "-f", str(tmp_path / "deploy" / "docker-compose.yml"), "config"],
        cwd=tmp_path,
        # Only the .env decides: nothing from the test environment leaks into the file.
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    result = resolve(tmp_path_factory.mktemp("compose"), **SECRETS)
    assert result.returncode == 0, result.stderr
    return dict(yaml.safe_load(result.stdout))


def published(service: dict[str, Any]) -> list[tuple[str, int]]:
    """(host port, container port) pairs, from the short or the long syntax."""
    pairs = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            pairs.append((str(port["published"]), int(port["target"])))
        else:
            host, _, target = str(port).rpartition(":")
            pairs.append((host.rpartition(":")[2], int(target)))
    return pairs


def test_the_stack_has_every_process(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {
        "postgres",
        "pgbouncer",
        "redis",
        "migrate",
        *APPS,
    }


def test_only_the_api_is_published_and_settlement_stays_internal(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert published(services["api"]) == [("8000", 8000)]
    for name, service in services.items():
        if name != "api":
            assert published(service) == [], name
    assert set(services["settlement"]["networks"]) == {"internal"}
    assert compose["networks"]["internal"]["internal"] is True


def test_apps_reach_postgres_through_pgbouncer_on_6432(compose: dict[str, Any]) -> None:
    for name in APPS:
        env = compose["services"][name]["environment"]
        assert (env["DB_HOST"], str(env["DB_PORT"]), env["DATABASE_URL"]) == (
            "pgbouncer",
            "6432",
            "",
        )
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert env["SETTLEMENT_URL"] == "http://settlement:9000/api/settlement/withdraw"
        assert env["ENVIRONMENT"] == "production"
        # Settings come from deploy/.env.
        assert env["RL_MAX_REQUESTS"] == "300"
    migrate = compose["services"]["migrate"]
    assert (migrate["environment"]["DB_HOST"], str(migrate["environment"]["DB_PORT"])) == (
        "postgres",
        "5432",
    )
    ini = (DEPLOY / "pgbouncer" / "pgbouncer.ini").read_text()
    assert re.search(r"^pool_mode = transaction$", ini, re.M)
    assert re.search(r"^listen_port = 6432$", ini, re.M)
    assert re.search(r"^creditpool = host=postgres port=5432 ", ini, re.M)
    # The timeouts are the runtime roles' (migration 0009), not a per-connection SET.
    assert not re.search(r"^[^;].*connect_query", ini, re.M)


def test_each_service_logs_in_as_its_role_with_only_its_secrets(compose: dict[str, Any]) -> None:
    services = compose["services"]
    env = {name: services[name]["environment"] for name in (*APPS, "migrate")}
    logins = {name: (e["POSTGRES_USER"], e["POSTGRES_PASSWORD"]) for name, e in env.items()}
    assert logins == {
        "api": ("creditpool_api", "api-password"),
        "worker": ("creditpool_api", "api-password"),
        "settlement": ("creditpool_settlement", "settlement-password"),
        "migrate": ("postgres", "owner-password"),  # the owner, straight to PostgreSQL
    }
    # deploy/.env reaches every container (env_file): the secrets are blanked for all and
    # given back only where used. Settlement and the worker sign no tokens.
    assert [name for name, e in env.items() if e["SECRET_KEY"]] == ["api"]
    holders = {
        name
        for name, e in env.items()
        for key in ("API_DB_PASSWORD", "SETTLEMENT_DB_PASSWORD")
        if e.get(key)
    }
    assert holders == {"migrate"}
    assert (env["migrate"]["API_DB_PASSWORD"], env["migrate"]["SETTLEMENT_DB_PASSWORD"]) == (
        "api-password",
        "settlement-password",
    )
    for name in APPS:
        assert env[name]["INTERNAL_TOKEN"] == SECRET + "-internal", name
        assert not env[name]["MIGRATION_DATABASE_URL"], name
    bouncer = services["pgbouncer"]["environment"]
    assert (bouncer["API_DB_PASSWORD"], bouncer["SETTLEMENT_DB_PASSWORD"]) == (
        "api-password",
        "settlement-password",
    )
    assert services["pgbouncer"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )


def test_startup_order_waits_for_health_and_the_migration(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("postgres", "pgbouncer", "redis", *APPS):
        assert services[name]["healthcheck"]["test"], name
    for name in APPS:
        depends = {k: v["condition"] for k, v in services[name]["depends_on"].items()}
        assert depends["migrate"] == "service_completed_successfully", name
        assert depends["pgbouncer"] == "service_healthy", name
    assert services["api"]["depends_on"]["settlement"]["condition"] == "service_healthy"
    # The same check as the k8s liveness probe; tests/integration/test_graceful_shutdown.py
    # runs it against a live worker.
    worker_check = ["CMD", "python", "-m", "app", "worker-alive"]
    assert services["worker"]["healthcheck"]["test"] == worker_check
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_app_services_run_the_image_roles(compose: dict[str, Any]) -> None:
    entrypoint = (DEPLOY / "entrypoint.sh").read_text()
    graceful_s = int(re.search(r"^GRACEFUL_S=(\d+)$", entrypoint, re.M).group(1))  # type: ignore[union-attr]
    for name in (*APPS, "migrate"):
        service = compose["services"][name]
        assert service["command"] == [name]
        assert re.search(rf"^\s+{name}\) ", entrypoint, re.M), name
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert int(str(service["stop_grace_period"]).rstrip("s")) > graceful_s
    assert (DEPLOY / "Dockerfile").is_file()


@pytest.mark.parametrize(
    "missing", ["POSTGRES_PASSWORD", "API_DB_PASSWORD", "SETTLEMENT_DB_PASSWORD"]
)
def test_a_missing_database_password_stops_compose(tmp_path: Path, missing: str) -> None:
    result = resolve(tmp_path, **SECRETS | {missing: ""})
    assert result.returncode != 0
    assert f"set {missing} in deploy/.env" in result.stderr
