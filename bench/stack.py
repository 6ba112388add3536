"""A production-like stack for measurements, all on 127.0.0.1.

Servers: a private PostgreSQL (durable: fsync and synchronous_commit on) and Redis. Apps: the
api (uvicorn, `--workers N`), settlement, and optionally the arq worker, as real processes
whose stdout (one JSON line per request) goes to log files, as it would to a collector.
"""

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

from app.database_roles import API_ROLE, SETTLEMENT_ROLE, as_role
from app.dev.embedded import EmbeddedPostgres, EmbeddedRedis
from app.dev.embedded.process import free_port

ARQ_HEALTH_KEY = "arq:queue:health-check"
STOP_TIMEOUT_S = 30
# How the api is served in the bench; yardstick (b) is served the same way.
UVICORN = ["-m", "uvicorn", "--host", "127.0.0.1", "--no-access-log", "--no-server-header"]


@dataclass(frozen=True)
class Servers:
    root: Path
    database_url: str
    redis_url: str
    postgres: EmbeddedPostgres
    redis: EmbeddedRedis
    # The process trees whose CPU counts as the server's: postmaster, redis-server.
    pids: dict[str, int]


@dataclass(frozen=True)
class BenchStack:
    api_url: str
    settlement_url: str
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]]
    logs: Path  # <app>.log: each process's stdout and stderr
    commands: dict[str, list[str]]  # each process's arguments to our interpreter

    @property
    def pids(self) -> dict[str, int]:
        return {name: process.pid for name, process in self.processes.items()}

    def restart(self, name: str) -> None:
        """Start `name` again as it was first started, as a supervisor would after it died."""
        env = process_env(self.env, name)
        self.processes[name] = _spawn(self.commands[name], env, self.logs / f"{name}.log")

    def log_offsets(self) -> dict[str, int]:
        """Where each app's log ends now (see `errors_since`)."""
        return {name: (self.logs / f"{name}.log").stat().st_size for name in self.processes}

    def errors_since(self, offsets: dict[str, int]) -> dict[str, list[str]]:
        """Each app's error lines written after `offsets`: the apps' JSON ERROR lines and
        uvicorn's own (plain text) ones."""
        found = {}
        for name, offset in offsets.items():
            with (self.logs / f"{name}.log").open("rb") as log:
                log.seek(offset)
                lines = log.read().decode(errors="replace").splitlines()
            errors = [line for line in lines if _is_error(line)]
            if errors:
                found[name] = errors
        return found


def _is_error(line: str) -> bool:
    return '"level":"ERROR"' in line or '"level":"CRITICAL"' in line or line.startswith("ERROR:")


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def error_kinds(lines: list[str]) -> dict[str, int]:
    """Error lines grouped by what went wrong: a JSON line's message and the last line of
    its traceback (the exception), or a plain line as it is."""
    kinds: dict[str, int] = {}
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            # The exception is the traceback's last line, before SQLAlchemy's link to its docs.
            exc = [
                x
                for x in str(record.get("exc") or "").strip().splitlines()
                if x.strip() and not x.startswith("(Background on this error")
            ]
            kind = f"{record.get('msg')}: {exc[-1]}" if exc else str(record.get("msg"))
        else:
            kind = line.strip()
        kind = _UUID.sub("<id>", kind)[:300]  # one kind, whichever withdrawal it names
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def _postmaster_pid(postgres: EmbeddedPostgres) -> int:
    return int((postgres.data_dir / "postmaster.pid").read_text().split()[0])


def _redis_pid(url: str) -> int:
    with redis.Redis.from_url(url) as client:
        return int(client.info("server")["process_id"])


@contextmanager
def running_servers() -> Iterator[Servers]:
    """Migrated PostgreSQL and an empty Redis in a temporary directory, removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="creditpool-bench-"))
    postgres = EmbeddedPostgres(root / "postgres", port=free_port(), durable=True)
    redis_server = EmbeddedRedis(root / "redis", port=free_port(), durable=False)
    try:
        postgres.start()
        redis_server.start()
        postgres.migrate()  # as the owner; the apps run as the runtime roles
        pids = {"postgres": _postmaster_pid(postgres), "redis": _redis_pid(redis_server.url)}
        yield Servers(root, postgres.url, redis_server.url, postgres, redis_server, pids)
    finally:
        redis_server.stop()
        postgres.stop()
        shutil.rmtree(root, ignore_errors=True)


def app_env(servers: Servers, extra_env: dict[str, str] | None = None) -> dict[str, str]:
    """Production mode (real secrets, so the default-secret guard is on) against `servers`."""
    return (
        dict(os.environ)
        | {
            "ENVIRONMENT": "production",
            "SECRET_KEY": secrets.token_urlsafe(32),
            "INTERNAL_TOKEN": secrets.token_urlsafe(32),
            # The api's role; settlement's process gets its own (process_env). The owner
            # migrates and resets the seed.
            "DATABASE_URL": servers.postgres.url_for(API_ROLE),
            "MIGRATION_DATABASE_URL": servers.database_url,
            "REDIS_URL": servers.redis_url,
        }
        | (extra_env or {})
    )


def process_env(env: dict[str, str], name: str) -> dict[str, str]:
    """`env` for the app process `name`: settlement logs in as its own role."""
    if name != "settlement":
        return env
    return env | {"DATABASE_URL": as_role(env["DATABASE_URL"], SETTLEMENT_ROLE)}


def wait_healthy(url: str, process: subprocess.Popen[bytes] | None, timeout: float = 60) -> None:
    """Until `url`/healthz answers 200; fails early if `process` (when given) has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} never became healthy")


def _wait_worker(redis_url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """The arq worker writes its health key once it polls the queue."""
    deadline = time.monotonic() + timeout
    with redis.Redis.from_url(redis_url) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the worker exited with {process.returncode}")
            if client.exists(ARQ_HEALTH_KEY):
                return
            time.sleep(0.1)
    raise TimeoutError("the arq worker never reported healthy")


@contextmanager
def running_apps(
    servers: Servers,
    *,
    api_workers: int = 1,
    worker: bool = False,
    extra_env: dict[str, str] | None = None,
) -> Iterator[BenchStack]:
    """api, settlement (and the worker) against `servers`, stopped on exit."""
    api_port, settlement_port = free_port(), free_port()
    settlement_url = f"http://127.0.0.1:{settlement_port}"
    env = app_env(servers, {"SETTLEMENT_URL": f"{settlement_url}/api/settlement/withdraw"})
    env |= extra_env or {}
    logs = servers.root / "logs"
    logs.mkdir(exist_ok=True)
    if api_workers > 1:
        # prometheus-client's multiprocess mode, as deployed: an empty directory per start.
        metrics_dir = Path(tempfile.mkdtemp(prefix="metrics-", dir=servers.root))
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    commands = {
        "settlement": [*UVICORN, "app.settlement.main:app", "--port", str(settlement_port)],
        "api": [*UVICORN, "app.main:app", "--port", str(api_port), "--workers", str(api_workers)],
    }
    if worker:
        commands["worker"] = ["-m", "arq", "workers.settings.WorkerSettings"]
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, args in commands.items():
            processes[name] = _spawn(args, process_env(env, name), logs / f"{name}.log")
        api_url = f"http://127.0.0.1:{api_port}"
        wait_healthy(settlement_url, processes["settlement"])
        wait_healthy(api_url, processes["api"])
        if worker:
            _wait_worker(servers.redis_url, processes["worker"])
        yield BenchStack(api_url, settlement_url, env, processes, logs, commands)
    finally:
        # Those running now: a process restarted meanwhile replaced its entry.
        _stop(processes.values())


def _spawn(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(  # noqa: S603 - our interpreter, our args
            [sys.executable, *args], env=env, stdout=log, stderr=subprocess.STDOUT
        )


@contextmanager
def running_trivial_app(servers: Servers, *, workers: int) -> Iterator[str]:
    """Yardstick (b), bench.trivial_app, under the api's uvicorn layout; yields its URL."""
    port = free_port()
    command = [*UVICORN, "bench.trivial_app:app", "--port", str(port), "--workers", str(workers)]
    logs = servers.root / "logs"
    logs.mkdir(exist_ok=True)
    with (logs / "trivial_app.log").open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - our interpreter, our args
            [sys.executable, *command], env=app_env(servers), stdout=log, stderr=subprocess.STDOUT
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, process)
        yield url
    finally:
        _stop([process])


def _stop(processes: Iterable[subprocess.Popen[bytes]]) -> None:
    processes = list(processes)
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running_stack(
    *, api_workers: int = 1, extra_env: dict[str, str] | None = None
) -> Iterator[BenchStack]:
    """Servers and apps together (bench.latency)."""
    with (
        running_servers() as servers,
        running_apps(servers, api_workers=api_workers, extra_env=extra_env) as stack,
    ):
        yield stack
