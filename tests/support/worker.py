"""A real arq worker process for async-mode tests."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from app.config import Settings

# Fast clocks for tests: short retry backoff, a sweeper every second, a short job timeout so
# a job killed with its worker comes back quickly.
FAST_WORKER = {
    "RECONCILE_AFTER_S": "1",
    "SWEEP_EVERY_S": "1",
    "PAYOUT_RETRY_BASE_S": "0.2",
    "PAYOUT_RETRY_MAX_S": "1",
    "WORKER_JOB_TIMEOUT_S": "2",
}


def worker_env(settings: Settings, **overrides: str) -> dict[str, str]:
    return (
        os.environ
        | FAST_WORKER
        | {
            "ENVIRONMENT": "test",
            "DATABASE_URL": str(settings.DATABASE_URL),
            "REDIS_URL": str(settings.REDIS_URL),
            "SETTLEMENT_URL": settings.SETTLEMENT_URL,
        }
        | overrides
    )


@contextmanager
def running_worker(settings: Settings, **overrides: str) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "arq", "workers.settings.WorkerSettings"],
        env=worker_env(settings, **overrides),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def batch_sizes(metrics_dir: Path, batcher: str) -> tuple[int, int]:
    """(batches, members) of one batcher, from the Prometheus files of worker processes that
    ran with PROMETHEUS_MULTIPROC_DIR=metrics_dir."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics_dir))
    found = {"count": 0.0, "sum": 0.0}
    for metric in registry.collect():
        for sample in metric.samples:
            if sample.labels.get("batcher") != batcher:
                continue
            for kind in found:
                if sample.name == f"creditpool_batch_size_{kind}":
                    found[kind] += sample.value
    return int(found["count"]), int(found["sum"])
