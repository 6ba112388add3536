"""WORKER_NICENESS lowers the worker process's CPU priority, and only the worker's."""

import asyncio
import os

from redis.asyncio import Redis

from app.config import Settings
from tests.support.worker import running_worker

HEALTH_KEY = "arq:queue:health-check"


async def test_the_worker_runs_at_the_configured_niceness(settings: Settings, redis: Redis) -> None:
    await redis.delete(HEALTH_KEY)
    with running_worker(settings, WORKER_NICENESS="7") as worker:
        for _ in range(200):  # the health key appears once startup() has run
            if await redis.exists(HEALTH_KEY):
                break
            await asyncio.sleep(0.05)
        assert worker.poll() is None
        assert os.getpriority(os.PRIO_PROCESS, worker.pid) == 7
    assert os.getpriority(os.PRIO_PROCESS, 0) == 0  # the test process is untouched
