"""Several uvicorn workers, one set of totals: prometheus-client's multiprocess mode.

`uvicorn --workers N` forks N identical processes behind one socket; which worker answers a
request or a scrape is up to the kernel. Two single-worker servers sharing one
PROMETHEUS_MULTIPROC_DIR are the same setup with the choice made by the test, so it can send
known numbers of requests to each and check that either one's /metrics reports the sum.
"""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from app.dev.embedded.process import free_port
from tests.support.observability import samples
from tests.support.stack import ServerStack

ROOT = Path(__file__).resolve().parents[2]
UVICORN = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1"]
UVICORN += ["--no-access-log", "--log-level", "warning"]
UNAUTHORIZED_ME = {"service": "api", "route": "/api/v1/me", "status": "401"}


def _wait_healthy(base_url: str, process: subprocess.Popen[bytes], output: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(output.read_text()[-3000:])
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{base_url} never became healthy")


@pytest.fixture
def two_workers(stack: ServerStack, tmp_path: Path) -> Iterator[list[str]]:
    env = os.environ | {
        "ENVIRONMENT": "test",
        "DATABASE_URL": stack.database_url,
        "REDIS_URL": stack.redis_url,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    (tmp_path / "metrics").mkdir()
    ports = [free_port(), free_port()]
    outputs = [tmp_path / f"worker-{port}.log" for port in ports]
    with ExitStack() as files:
        workers = [
            subprocess.Popen(
                [*UVICORN, "--port", str(port)],
                cwd=ROOT,
                env=env,
                stdout=files.enter_context(output.open("wb")),
                stderr=subprocess.STDOUT,
            )
            for port, output in zip(ports, outputs, strict=True)
        ]
        try:
            urls = [f"http://127.0.0.1:{port}" for port in ports]
            for url, worker, output in zip(urls, workers, outputs, strict=True):
                _wait_healthy(url, worker, output)
            yield urls
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.wait(timeout=15)


def test_every_worker_reports_the_total_of_all_workers(two_workers: list[str]) -> None:
    first, second = two_workers
    for base_url, count in ((first, 3), (second, 5)):
        for _ in range(count):
            assert httpx.get(f"{base_url}/api/v1/me", timeout=5).status_code == 401
    for base_url in two_workers:
        text = httpx.get(f"{base_url}/metrics", timeout=5).text
        assert samples(text, "creditpool_http_requests_total", **UNAUTHORIZED_ME) == 8
        assert (
            samples(text, "creditpool_http_request_duration_seconds_count", **UNAUTHORIZED_ME) == 8
        )
