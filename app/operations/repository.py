"""SQL for operations: the reconciler's lock and what is still open."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.models import Withdrawal, WithdrawalStatus
from app.withdrawals.repository import WithdrawalRow

OPEN_STATUSES = (WithdrawalStatus.QUEUED, WithdrawalStatus.PROCESSING)

# Any fixed 64-bit key, the same in every worker ("crecon" in ASCII).
RECONCILER_LOCK_KEY = 0x637265636F6E


async def try_reconciler_lock(conn: AsyncConnection) -> bool:
    """Take the reconciler's lock for the connection's open transaction, if no one holds it.

    Transaction-scoped, not session-scoped: behind a transaction-mode pooler a session lock
    could stay with a server connection another client gets next (and never be released),
    while this one ends with its transaction, however that ends.
    """
    taken = await conn.scalar(
        text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": RECONCILER_LOCK_KEY}
    )
    return bool(taken)


# Open withdrawals are few and found through ix_withdrawals_status_updated; the history is
# never read. Attempts are bucketed so the label's values stay few.
_OPEN_SUMMARY = text(
    """
    SELECT extract(epoch FROM now() - min(created_at)) AS oldest_age_s,
           CASE WHEN attempts >= 5 THEN '5+' ELSE attempts::text END AS attempts,
           count(*) AS open_count
      FROM withdrawals
     WHERE status IN ('QUEUED', 'PROCESSING')
     GROUP BY 2
    """
)


@dataclass(frozen=True, slots=True)
class OpenSummary:
    oldest_age_s: float  # 0 when nothing is open
    by_attempts: dict[str, int]


async def open_summary(conn: AsyncConnection) -> OpenSummary:
    """The age of the oldest open withdrawal and the open ones by payout attempts."""
    rows = (await conn.execute(_OPEN_SUMMARY)).all()
    return OpenSummary(
        oldest_age_s=max((float(row.oldest_age_s) for row in rows), default=0.0),
        by_attempts={row.attempts: int(row.open_count) for row in rows},
    )


async def open_older_than(
    session: AsyncSession, *, cutoff: datetime, limit: int
) -> list[WithdrawalRow]:
    """Open withdrawals created before `cutoff`, oldest first."""
    columns = [getattr(Withdrawal, name) for name in WithdrawalRow.__dataclass_fields__]
    statement = (
        select(*columns)
        .where(Withdrawal.status.in_(OPEN_STATUSES), Withdrawal.created_at < cutoff)
        .order_by(Withdrawal.created_at)
        .limit(limit)
    )
    return [WithdrawalRow(*row) for row in await session.execute(statement)]
