"""The async payout queue: arq on Redis. Redis may lose every job; PostgreSQL keeps the intent.

A QUEUED withdrawal *is* the durable payout intent (written in the reservation's own
transaction), so an enqueue that fails or a job that Redis forgets is found again by the
sweeper. The job id is the withdrawal id: arq never holds two jobs for one withdrawal.
"""

import logging
from datetime import UTC, datetime, timedelta
from uuid import UUID

from arq.connections import ArqRedis
from redis.exceptions import RedisError

from app.withdrawals import statements
from app.withdrawals.money_path import MoneyPath

logger = logging.getLogger("app.withdrawals.queue")

PAY_JOB = "pay_withdrawal"


async def enqueue_payout(arq: ArqRedis, withdrawal_id: UUID) -> bool:
    """Queue the payout job; False (logged) if Redis refused, the sweeper retries later."""
    try:
        job = await arq.enqueue_job(PAY_JOB, str(withdrawal_id), _job_id=str(withdrawal_id))
    except (RedisError, OSError) as exc:
        logger.warning("enqueue failed for %s (%s); the sweeper will retry", withdrawal_id, exc)
        return False
    return job is not None


async def sweep(db: MoneyPath, arq: ArqRedis, *, older_than: timedelta) -> int:
    """Re-enqueue open withdrawals whose job was lost or that wait for reconciliation."""
    stale = await statements.open_older_than(
        db.engine, cutoff=datetime.now(UTC) - older_than, limit=1000
    )
    enqueued = 0
    for withdrawal in stale:
        enqueued += await enqueue_payout(arq, withdrawal.id)
    return enqueued
