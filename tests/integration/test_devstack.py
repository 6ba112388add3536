"""`make run` as a new user meets it: private servers, both apps up, Ctrl-C stops everything."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from app.database_roles import API_ROLE, SETTLEMENT_ROLE
from app.dev.embedded import EmbeddedPostgres
from app.dev.embedded.process import free_port

ROOT = Path(__file__).resolve().parents[2]


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"make run exited early: {process.stdout.read().decode()[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never became healthy")


def test_run_starts_private_servers_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    api_port, settlement_port, pg_port = free_port(), free_port(), free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "MIGRATION_DATABASE_URL", "REDIS_URL", "DB_HOST"}
    } | {
        "ENVIRONMENT": "dev",
        "EMBEDDED_DATA_DIR": str(tmp_path / "data"),
        "EMBEDDED_PG_PORT": str(pg_port),
        "EMBEDDED_REDIS_PORT": str(free_port()),
        "API_PORT": str(api_port),
        "SETTLEMENT_PORT": str(settlement_port),
        "ADMIN_PASSWORD": "bootstrap-password",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_healthy(f"http://127.0.0.1:{api_port}/healthz", process)
        _wait_healthy(f"http://127.0.0.1:{settlement_port}/healthz", process)
        for port in (api_port, settlement_port):
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
            assert ready.status_code == 200, ready.text
        # Migrated as the owner; the apps hold their pools' connections as the runtime roles.
        server = EmbeddedPostgres(tmp_path / "data" / "postgres", port=pg_port)
        users = server.psql(
            "SELECT string_agg(DISTINCT usename, ',' ORDER BY usename) FROM pg_stat_activity"
            " WHERE application_name = 'creditpool'",
            database="creditpool",
        )
        assert users == f"{API_ROLE},{SETTLEMENT_ROLE}"
        started = psutil.Process(process.pid).children(recursive=True)
        postgres = [
            p
            for p in psutil.process_iter(["cmdline"])
            if str(tmp_path) in " ".join(p.info["cmdline"] or [])
        ]
        assert len(started) >= 3  # api, settlement, worker
        assert postgres, "the private servers run from the temporary data directory"

        # The seed's CLI recipe works verbatim against the running stack (no URLs, no mode).
        cli_env = {k: v for k, v in env.items() if k != "ENVIRONMENT"}
        audit = subprocess.run(
            [sys.executable, "-m", "app", "audit"],
            cwd=ROOT,
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert audit.returncode == 0, audit.stdout + audit.stderr
        assert "audit: PASS" in audit.stdout

        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output.decode()[-3000:]
    _, alive = psutil.wait_procs([*started, *postgres], timeout=10)
    assert alive == [], f"left behind: {[p.pid for p in alive]}"
    assert (tmp_path / "data" / "postgres" / "PG_VERSION").exists()
    assert not (tmp_path / "data" / "dev.env").exists()  # gone with the stack
