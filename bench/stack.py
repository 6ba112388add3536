"""A production-like stack for measurements: private PostgreSQL (synchronous_commit on) and
Redis, the api and settlement as real uvicorn processes."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from app import migrations
from app.embedded import EmbeddedPostgres, EmbeddedRedis
from app.embedded.process import free_port


@dataclass(frozen=True)
class BenchStack:
    api_url: str
    settlement_url: str
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]]


def _wait_healthy(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} never became healthy")


@contextmanager
def running_stack(
    *, api_workers: int = 1, extra_env: dict[str, str] | None = None
) -> Iterator[BenchStack]:
    root = Path(tempfile.mkdtemp(prefix="creditpool-bench-"))
    postgres = EmbeddedPostgres(root / "postgres", port=free_port(), durable=True)
    redis = EmbeddedRedis(root / "redis", port=free_port(), durable=False)
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        postgres.start()
        redis.start()
        migrations.upgrade(postgres.url)
        api_port, settlement_port = free_port(), free_port()
        settlement_url = f"http://127.0.0.1:{settlement_port}"
        env = (
            os.environ
            | {
                "ENVIRONMENT": "test",
                "DATABASE_URL": postgres.url,
                "REDIS_URL": redis.url,
                "SETTLEMENT_URL": f"{settlement_url}/api/settlement/withdraw",
            }
            | (extra_env or {})
        )
        uvicorn = [
            sys.executable,
            "-m",
            "uvicorn",
            "--host",
            "127.0.0.1",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        processes["settlement"] = subprocess.Popen(  # noqa: S603
            [*uvicorn, "app.settlement.main:app", "--port", str(settlement_port)], env=env
        )
        processes["api"] = subprocess.Popen(  # noqa: S603
            [*uvicorn, "app.main:app", "--port", str(api_port), "--workers", str(api_workers)],
            env=env,
        )
        api_url = f"http://127.0.0.1:{api_port}"
        _wait_healthy(settlement_url)
        _wait_healthy(api_url)
        yield BenchStack(api_url, settlement_url, env, processes)
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            process.wait(timeout=30)
        redis.stop()
        postgres.stop()
        shutil.rmtree(root, ignore_errors=True)
