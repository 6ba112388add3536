"""arq worker entry point: `arq workers.settings.WorkerSettings`.

Health check for operators: `arq --check workers.settings.WorkerSettings` exits 0 while a
worker has written its health key recently (every `health_check_interval` seconds).
"""

import asyncio
import os
from typing import Any

import uvloop
from arq import cron, func
from arq.connections import RedisSettings

from app.config import get_settings
from app.db import create_engine, create_sessionmaker
from app.gc_tuning import tune_gc
from app.observability.logging import configure_logging
from app.withdrawals.money_path import create_money_path
from app.withdrawals.settlement_client import create_http_client
from workers.jobs import pay_withdrawal, purge_idempotency_keys, sweep_open_withdrawals

settings = get_settings()
# The event loop the apps get from uvicorn: arq's Worker takes whatever loop the policy makes
# (asyncio.get_event_loop() in Worker.__init__), and a payout is mostly socket I/O.
asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def startup(ctx: dict[str, Any]) -> None:
    if settings.WORKER_NICENESS:
        os.nice(settings.WORKER_NICENESS)  # below the api's priority (see Settings)
    configure_logging(settings.LOG_LEVEL)  # money events from payouts as JSON lines
    ctx["settings"] = settings
    pool_size = min(settings.WORKER_MAX_JOBS, 20)
    ctx["engine"] = create_engine(settings, pool_size=pool_size)
    ctx["sessionmaker"] = create_sessionmaker(ctx["engine"])
    ctx["money"] = create_money_path(ctx["engine"], settings)
    ctx["http"] = create_http_client(settings)
    tune_gc()


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["money"].aclose()
    await ctx["http"].aclose()
    await ctx["engine"].dispose()


class WorkerSettings:
    redis_settings = RedisSettings.from_dsn(settings.redis_url)
    on_startup = startup
    on_shutdown = shutdown
    functions = [
        # keep_result=0: a finished job leaves no result key, so the sweeper can enqueue the
        # same withdrawal id again if it is still open.
        func(
            pay_withdrawal,
            max_tries=settings.PAYOUT_MAX_TRIES,
            keep_result=0,
            timeout=settings.WORKER_JOB_TIMEOUT_S,
        ),
    ]
    cron_jobs = [
        cron(
            sweep_open_withdrawals,
            second=set(range(0, 60, settings.SWEEP_EVERY_S)),
            run_at_startup=True,
            keep_result=0,
        ),
        cron(purge_idempotency_keys, minute={7}, second={0}, run_at_startup=True, keep_result=0),
    ]
    max_jobs = settings.WORKER_MAX_JOBS
    job_timeout = settings.WORKER_JOB_TIMEOUT_S
    health_check_interval = 10
    # SIGTERM: take no new job and let running ones finish for this long; one cut off after
    # it goes back to the queue (jobs are idempotent). deploy/ allows 30 s before SIGKILL.
    job_completion_wait = 20
