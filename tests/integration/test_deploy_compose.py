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
    result = resolve(
        tmp_path_factory.mktemp("compose"),
        POSTGRES_PASSWORD="db-password",
        SECRET_KEY=SECRET,
        INTERNAL_TOKEN=SECRET + "-internal",
    )
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
        assert env["SECRET_KEY"] == SECRET
    migrate = compose["services"]["migrate"]
    assert (migrate["environment"]["DB_HOST"], str(migrate["environment"]["DB_PORT"])) == (
        "postgres",
        "5432",
    )
    ini = (DEPLOY / "pgbouncer" / "pgbouncer.ini").read_text()
    assert re.search(r"^pool_mode = transaction$", ini, re.M)
    assert re.search(r"^listen_port = 6432$", ini, re.M)
    assert re.search(r"^creditpool = host=postgres port=5432 ", ini, re.M)


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


def test_a_missing_database_password_stops_compose(tmp_path: Path) -> None:
    result = resolve(tmp_path, POSTGRES_PASSWORD="")
    assert result.returncode != 0
    assert "set POSTGRES_PASSWORD in deploy/.env" in result.stderr
