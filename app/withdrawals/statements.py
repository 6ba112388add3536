"""The money path's single statements beside the two batched transactions (reserve.py,
finish.py): marking a payout attempt and finding work, on the one engine."""

from datetime import datetime
from typing import cast
from uuid import UUID

from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.models import Withdrawal, WithdrawalStatus
from app.withdrawals.repository import WithdrawalRow, row_columns, withdrawal_row

_w = cast(Table, Withdrawal.__table__)
_OPEN = [str(WithdrawalStatus.QUEUED), str(WithdrawalStatus.PROCESSING)]


async def start_processing(engine: AsyncEngine, *, withdrawal_id: UUID) -> WithdrawalRow | None:
    """Mark an open withdrawal PROCESSING before a payout attempt; None if already final."""
    async with engine.begin() as conn:
        result = await conn.execute(
            update(_w)
            .where(_w.c.id == withdrawal_id, _w.c.status.in_(_OPEN))
            .values(
                status=str(WithdrawalStatus.PROCESSING),
                attempts=_w.c.attempts + 1,
                updated_at=func.now(),
            )
            .returning(*row_columns())
        )
        row = result.first()
    return withdrawal_row(row) if row else None


async def open_older_than(
    engine: AsyncEngine, *, cutoff: datetime, limit: int
) -> list[WithdrawalRow]:
    """Open withdrawals untouched since `cutoff`, oldest first: the reconciler's work list."""
    async with engine.connect() as conn:
        result = await conn.execute(
            select(*row_columns())
            .where(_w.c.status.in_(_OPEN), _w.c.updated_at < cutoff)
            .order_by(_w.c.updated_at)
            .limit(limit)
        )
        return [withdrawal_row(row) for row in result]
