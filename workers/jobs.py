"""arq jobs: each is thin, it opens what it needs from ctx and calls one service."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from arq import Retry

from app.idempotency import repository as idempotency_keys
from app.requestlog import partitions
from app.withdrawals.payout import attempt_payout, backoff_s
from app.withdrawals.queue import sweep

PURGE_BATCH = 10_000


async def pay_withdrawal(ctx: dict[str, Any], withdrawal_id: str) -> str:
    """Pay one queued withdrawal in the worker's next payout batch; an unknown outcome (or a
    row another worker holds) retries with backoff, then waits for the sweeper and the
    reconciler (the withdrawal stays open, its money reserved)."""
    settings = ctx["settings"]
    attempt = await attempt_payout(
        ctx["payouts"],
        withdrawal_id=UUID(withdrawal_id),
        final_attempt=ctx["job_try"] >= settings.PAYOUT_MAX_TRIES,
    )
    if attempt.retry:
        raise Retry(defer=backoff_s(settings, ctx["job_try"]))
    return attempt.outcome


async def sweep_open_withdrawals(ctx: dict[str, Any]) -> int:
    """Re-enqueue withdrawals whose job Redis lost, or that wait for reconciliation."""
    older_than = timedelta(seconds=ctx["settings"].RECONCILE_AFTER_S)
    return await sweep(ctx["money"], ctx["redis"], older_than=older_than)


async def purge_idempotency_keys(ctx: dict[str, Any], batch: int = PURGE_BATCH) -> int:
    """Forget the keys of final work older than their retention (24 h by default).

    One short transaction per batch, so a large backlog never meets the statement timeout.
    """
    hours = ctx["settings"].IDEMPOTENCY_KEY_TTL_HOURS
    cutoff = datetime.now(UTC) - timedelta(hours=hours)
    purged = 0
    while True:
        async with ctx["sessionmaker"]() as session, session.begin():
            deleted = await idempotency_keys.delete_final_batch(session, cutoff=cutoff, batch=batch)
        purged += deleted
        if deleted < batch:
            return purged


async def maintain_request_log(ctx: dict[str, Any]) -> partitions.Maintenance:
    """Make today's and tomorrow's api_request_log partitions, drop those past retention."""
    async with ctx["engine"].begin() as conn:
        return await partitions.maintain(
            conn,
            today=datetime.now(UTC).date(),
            retention_days=ctx["settings"].REQUEST_LOG_RETENTION_DAYS,
        )
