"""arq worker entry point: `arq workers.settings.WorkerSettings`.

Liveness: `python -m app worker-alive` exits 0 while the worker's own reconciler timer beats
(app/operations/reconciler.py); it needs no Redis, so a Redis outage restarts no worker.
`arq --check workers.settings.WorkerSettings` still reads arq's health key from Redis.
"""

import asyncio
import os
from contextlib import suppress
from typing import Any

import uvloop
from arq import cron, func
from arq.connections import RedisSettings
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.config import get_settings
from app.db import close_pools, create_engine, create_sessionmaker
from app.gc_tuning import tune_gc
from app.observability.logging import configure_logging
from app.operations.reconciler import run_timer
from app.withdrawals.money_path import create_money_path
from app.withdrawals.payout import create_payout_batcher
from app.withdrawals.settlement_client import create_http_client
from workers.jobs import (
    maintain_request_log,
    pay_withdrawal,
    purge_idempotency_keys,
    sweep_open_withdrawals,
)

settings = get_settings()
# The event loop the apps get from uvicorn: arq's Worker takes whatever loop the policy makes
# (asyncio.get_event_loop() in Worker.__init__), and a payout is mostly socket I/O.
asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def startup(ctx: dict[str, Any]) -> None:
    if settings.WORKER_NICENESS:
        os.nice(settings.WORKER_NICENESS)  # below the api's priority (see Settings)
    configure_logging(settings.LOG_LEVEL)  # money events from payouts as JSON lines
    ctx["settings"] = settings
    # Jobs hold no connection: the batchers do (one payout claim, one finish at a time), the
    # reconciler and the cron jobs, so WORKER_MAX_JOBS does not size the pool.
    pool_size = min(settings.WORKER_MAX_JOBS, 20)
    ctx["engine"] = create_engine(settings, pool_size=pool_size)
    ctx["sessionmaker"] = create_sessionmaker(ctx["engine"])
    ctx["money"] = create_money_path(ctx["engine"], settings)
    ctx["http"] = create_http_client(settings)
    ctx["payouts"] = create_payout_batcher(ctx["money"], http=ctx["http"], settings=settings)
    ctx["reconciler"] = asyncio.create_task(
        run_timer(ctx["money"], http=ctx["http"], settings=settings)
    )
    tune_gc()


async def shutdown(ctx: dict[str, Any]) -> None:
    # Cancelled between or inside its steps: each step is its own transaction, so a cut one
    # leaves the withdrawal open for the next run (never half-finished).
    ctx["reconciler"].cancel()
    with suppress(asyncio.CancelledError):
        await ctx["reconciler"]
    # Drain, payouts first (they finish through the money path): every member gets its answer.
    await ctx["payouts"].aclose()
    await ctx["money"].aclose()
    await ctx["http"].aclose()
    await close_pools(ctx["engine"])


def redis_settings() -> RedisSettings:
    """arq's Redis, retried for as long as it is down: arq's poll loop would otherwise end the
    process at the first lost connection, and with it the reconciler timer that keeps money
    moving without Redis. Queued jobs wait in Redis (or for the sweeper) meanwhile."""
    configured = RedisSettings.from_dsn(settings.redis_url)
    configured.retry_on_error = [RedisConnectionError, RedisTimeoutError, OSError]
    configured.retry = Retry(ExponentialBackoff(cap=5.0, base=0.1), retries=-1)
    return configured


class WorkerSettings:
    redis_settings = redis_settings()
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
        # Hourly, though daily would do: tomorrow's partition then exists ~24 h ahead.
        cron(maintain_request_log, minute={17}, second={0}, run_at_startup=True, keep_result=0),
    ]
    # Concurrent jobs are what coalesces into payout batches (see WORKER_MAX_JOBS).
    max_jobs = settings.WORKER_MAX_JOBS
    job_timeout = settings.WORKER_JOB_TIMEOUT_S
    health_check_interval = 10
    # SIGTERM: take no new job and let running ones finish for this long; one cut off after
    # it goes back to the queue (jobs are idempotent). deploy/ allows 40 s before SIGKILL.
    job_completion_wait = 20
