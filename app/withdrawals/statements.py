"""The money path's single statements beside the two batched transactions (reserve.py,
finish.py): claiming withdrawals for a payout attempt and finding work, on the one engine.

A claim marks open withdrawals PROCESSING (attempts + 1) in one statement and commits at once:
no row lock is held across the settlement call that follows. Its rows are chosen
`FOR UPDATE SKIP LOCKED`, so a row another transaction holds (another worker's claim, the
reconciler's, a finish) is skipped rather than waited for; settlement's idempotency on the
withdrawal id is the last guard against a second payment.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from sqlalchemy import DateTime, Integer, Table, Uuid, any_, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine

from app.models import Withdrawal, WithdrawalStatus
from app.withdrawals.repository import WithdrawalRow, row_columns, withdrawal_row

_w = cast(Table, Withdrawal.__table__)
_OPEN = [str(WithdrawalStatus.QUEUED), str(WithdrawalStatus.PROCESSING)]


def _claim(chosen: Any) -> Any:
    return (
        update(_w)
        .where(_w.c.id.in_(chosen))
        .values(
            status=str(WithdrawalStatus.PROCESSING),
            attempts=_w.c.attempts + 1,
            updated_at=func.now(),
        )
        .returning(*row_columns())
    )


# One statement shape whatever the number of ids (an array parameter), compiled once.
_ids = bindparam("ids", type_=ARRAY(Uuid))
_CLAIM_IDS = _claim(
    select(_w.c.id)
    .where(_w.c.id == any_(_ids), _w.c.status.in_(_OPEN))
    .with_for_update(skip_locked=True)
)
_STILL_OPEN = select(_w.c.id).where(_w.c.id == any_(_ids), _w.c.status.in_(_OPEN))
_CLAIM_STALE = _claim(
    select(_w.c.id)
    .where(_w.c.status.in_(_OPEN), _w.c.updated_at < bindparam("cutoff", type_=DateTime(True)))
    .order_by(_w.c.updated_at)
    .limit(bindparam("limit", type_=Integer))
    .with_for_update(skip_locked=True)
)


@dataclass(frozen=True)
class Claim:
    """`claimed`: now PROCESSING, this caller's to pay. `busy`: open, but locked by another
    transaction (try again later). Any other id asked for is final (or does not exist)."""

    claimed: list[WithdrawalRow]
    busy: set[UUID]


async def claim(engine: AsyncEngine, *, ids: Sequence[UUID]) -> Claim:
    """Claim the open, unlocked ones of `ids` for a payout attempt (the worker's batch)."""
    async with engine.begin() as conn:
        claimed = [withdrawal_row(row) for row in await conn.execute(_CLAIM_IDS, {"ids": ids})]
        busy: set[UUID] = set()
        if len(claimed) < len(ids):
            # Read without a lock: open now means someone else holds it; final means done.
            rest = list(set(ids) - {w.id for w in claimed})
            busy = set((await conn.execute(_STILL_OPEN, {"ids": rest})).scalars())
    return Claim(claimed, busy)


async def claim_stale(engine: AsyncEngine, *, cutoff: datetime, limit: int) -> list[WithdrawalRow]:
    """Claim up to `limit` open withdrawals untouched since `cutoff`, oldest first, skipping
    any another transaction holds (the reconciler's work; each claimed one is then newer than
    the cutoff, so the same run never claims it twice)."""
    async with engine.begin() as conn:
        result = await conn.execute(_CLAIM_STALE, {"cutoff": cutoff, "limit": limit})
        return sorted((withdrawal_row(row) for row in result), key=lambda w: w.created_at)


async def open_older_than(
    engine: AsyncEngine, *, cutoff: datetime, limit: int
) -> list[WithdrawalRow]:
    """Open withdrawals untouched since `cutoff`, oldest first: the sweeper's work list."""
    async with engine.connect() as conn:
        result = await conn.execute(
            select(*row_columns())
            .where(_w.c.status.in_(_OPEN), _w.c.updated_at < cutoff)
            .order_by(_w.c.updated_at)
            .limit(limit)
        )
        return [withdrawal_row(row) for row in result]
