"""The worker's reconciler timer: it needs PostgreSQL and settlement, never Redis, so
sync-mode 202s and payouts whose arq job was lost finish during a Redis outage too."""

import asyncio
import logging
import time
from datetime import timedelta
from pathlib import Path

from app.config import Settings
from app.operations import repository
from app.withdrawals.money_path import MoneyPath
from app.withdrawals.reconcile import ReconcileReport, reconcile
from app.withdrawals.settlement_http import HopClient

logger = logging.getLogger("app.operations.reconciler")


async def reconcile_once(
    money: MoneyPath, *, http: HopClient, settings: Settings
) -> ReconcileReport | None:
    """One run, by at most one worker at a time (None: another worker holds the lock).

    The lock's transaction stays open, holding nothing else, while reconcile() works on its
    own connections: RECONCILE_BATCH withdrawals at most, BATCH_MAX per settlement call, one
    call at a time. Two runs at once would still be safe (each skips the rows the other
    holds, settlement pays a withdrawal id once, a withdrawal is finished once): the lock only
    saves the work.
    """
    async with money.engine.connect() as conn, conn.begin():
        if not await repository.try_reconciler_lock(conn):
            return None
        return await reconcile(
            money,
            http=http,
            settings=settings,
            older_than=timedelta(seconds=settings.RECONCILE_AFTER_S),
            limit=settings.RECONCILE_BATCH,
        )


async def run_timer(money: MoneyPath, *, http: HopClient, settings: Settings) -> None:
    """Reconcile every RECONCILE_EVERY_S until cancelled, beating the heartbeat each round."""
    heartbeat = Path(settings.WORKER_HEARTBEAT_FILE)
    while True:
        try:
            report = await reconcile_once(money, http=http, settings=settings)
            if report is not None and report.examined:
                logger.info("reconciler: examined=%d %s", report.examined, report.outcomes)
        except Exception:
            # A database or settlement outage: log it, keep the timer, try next round.
            logger.exception("reconciler run failed")
        await asyncio.to_thread(heartbeat.touch)
        await asyncio.sleep(settings.RECONCILE_EVERY_S)


def is_alive(settings: Settings) -> bool:
    """The worker's liveness: its timer beat recently (Redis plays no part)."""
    try:
        age = time.time() - Path(settings.WORKER_HEARTBEAT_FILE).stat().st_mtime
    except FileNotFoundError:
        return False
    return age < settings.worker_alive_within_s
