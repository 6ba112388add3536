"""`make run`: the whole system in the foreground until Ctrl-C.

Starts private PostgreSQL and Redis servers when DATABASE_URL / REDIS_URL are unset (data kept
under `.data/`), migrates, bootstraps the admin, then supervises api, settlement and worker.
"""

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from app import migrations
from app.auth import repository as users
from app.auth.admins import AdminRefused, create_admin
from app.auth.passwords import verify_password
from app.auth.service import set_password
from app.config import DEV_ENV_FILE, DEV_ENV_FLAG, Settings, get_settings
from app.database_roles import API_ROLE, SETTLEMENT_ROLE
from app.db import create_engine, create_sessionmaker
from app.dev.embedded import EmbeddedPostgres, EmbeddedRedis

STOP_GRACE_S = 15


def _log(message: str) -> None:
    print(f"[make run] {message}", flush=True)


def start_embedded_servers(settings: Settings) -> list[EmbeddedPostgres | EmbeddedRedis]:
    """Start the private servers that the environment does not provide; export their URLs.

    `settings` must come from the environment and `.env` only, not from an earlier run's
    DEV_ENV_FILE, or a stale URL would stop us from starting the servers.
    """
    data_dir = Path(settings.EMBEDDED_DATA_DIR)
    started: list[EmbeddedPostgres | EmbeddedRedis] = []
    if not settings.DATABASE_URL and not settings.DB_HOST:
        postgres = EmbeddedPostgres(data_dir / "postgres", port=settings.EMBEDDED_PG_PORT)
        postgres.start()
        started.append(postgres)
        # Migrations as the owner (the superuser), the processes as the runtime roles.
        os.environ["MIGRATION_DATABASE_URL"] = postgres.url
        os.environ["DATABASE_URL"] = postgres.url_for(API_ROLE)
        _log(f"PostgreSQL on {postgres.url} (data in {postgres.data_dir})")
    if not settings.REDIS_URL:
        redis = EmbeddedRedis(data_dir / "redis", port=settings.EMBEDDED_REDIS_PORT)
        redis.start()
        started.append(redis)
        os.environ["REDIS_URL"] = redis.url
        _log(f"Redis on {redis.url}")
    get_settings.cache_clear()
    return started


def _write_dev_env(settings: Settings) -> None:
    """Let CLI commands and Locust in this checkout find this running stack."""
    path = Path(DEV_ENV_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Written by `make run` while it runs; removed when it stops.\n"
        f"ENVIRONMENT=dev\nDATABASE_URL={settings.database_url}\nREDIS_URL={settings.redis_url}\n"
        f"MIGRATION_DATABASE_URL={settings.migration_database_url}\n"
    )


async def bootstrap_admin(settings: Settings) -> None:
    """Create the admin ADMIN_USERNAME, or give the existing admin ADMIN_PASSWORD.

    A user of that name who is not an admin (e.g. a merchant who registered "admin") is
    refused (AdminRefused), never promoted.
    """
    engine = create_engine(settings, pool_size=1)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            username, password = settings.ADMIN_USERNAME, settings.ADMIN_PASSWORD
            user = await users.get_user_by_username(session, username=username)
            if user is not None and not user.is_admin:
                raise AdminRefused(
                    f"ADMIN_USERNAME={username!r} is taken by a user who is not an admin; "
                    "set another ADMIN_USERNAME"
                )
            if user is not None:
                # Only a changed password is set: setting it revokes the admin's tokens.
                if password is not None and not verify_password(password, user.password_hash):
                    await set_password(session, user=user, password=password)
                return
            generated = password is None
            password = password or secrets.token_urlsafe(18)
            await create_admin(session, username=username, password=password)
        if generated:
            _log(f"created admin {username!r} with generated password: {password}")
            _log("(shown once; set ADMIN_PASSWORD to choose it)")
    finally:
        await engine.dispose()


def _spawn(*args: str, database_url: str | None = None) -> subprocess.Popen[bytes]:
    # Own process group: we decide the shutdown order, not the terminal's Ctrl-C. The flag lets
    # these processes (and only these) read DEV_ENV_FILE.
    env = os.environ | {DEV_ENV_FLAG: "1"}
    if database_url:
        env["DATABASE_URL"] = database_url
    return subprocess.Popen([sys.executable, *args], env=env, start_new_session=True)  # noqa: S603


def _stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run() -> int:
    """Run api, settlement and worker until Ctrl-C; stop everything this started."""
    os.environ.setdefault("ENVIRONMENT", "dev")
    get_settings.cache_clear()
    stop_requested = False

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    servers = start_embedded_servers(Settings())
    processes: list[subprocess.Popen[bytes]] = []
    try:
        settings = get_settings()
        _write_dev_env(settings)
        postgres = next((s for s in servers if isinstance(s, EmbeddedPostgres)), None)
        if postgres is not None:
            postgres.migrate()
        else:
            migrations.upgrade(settings.migration_database_url)
        try:
            asyncio.run(bootstrap_admin(settings))
        except AdminRefused as exc:
            _log(str(exc))
            return 1
        api_port, settlement_port = settings.API_PORT, settings.SETTLEMENT_PORT
        # --no-access-log: the apps write their own JSON line per request (app.access).
        host = ["--host", "127.0.0.1", "--no-server-header", "--no-access-log"]
        named = {
            "api": _spawn("-m", "uvicorn", "app.main:app", *host, "--port", str(api_port)),
            "settlement": _spawn(
                "-m",
                "uvicorn",
                "app.settlement.main:app",
                *host,
                "--port",
                str(settlement_port),
                # Its own runtime role on the private server; with DATABASE_URL given, every
                # process uses that one.
                database_url=postgres.url_for(SETTLEMENT_ROLE) if postgres else None,
            ),
            "worker": _spawn("-m", "arq", "workers.settings.WorkerSettings"),
        }
        processes = list(named.values())
        _log(f"api http://127.0.0.1:{api_port}/docs, settlement http://127.0.0.1:{settlement_port}")
        _log("Ctrl-C stops everything")
        while not stop_requested:
            exited = [name for name, p in named.items() if p.poll() is not None]
            if exited:
                _log(f"{exited[0]} exited; stopping everything")
                return 1
            time.sleep(0.2)
        return 0
    finally:
        _stop_all(processes)
        Path(DEV_ENV_FILE).unlink(missing_ok=True)
        for server in reversed(servers):
            server.stop()
        _log("stopped")
