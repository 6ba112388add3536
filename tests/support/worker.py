"""A real arq worker process for async-mode tests."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

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
