"""Reading withdrawals for the API (Core statements on a session).

The money steps are batched transactions: see reserve.py and finish.py.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, cast
from uuid import UUID

from sqlalchemy import Table, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Withdrawal, WithdrawalStatus

_w = cast(Table, Withdrawal.__table__)


@dataclass(frozen=True)
class WithdrawalRow:
    id: UUID
    merchant_id: int
    account_id: UUID
    amount: Decimal
    bank_account: str
    status: str
    idempotency_key: str
    bank_reference: str | None
    failure_code: str | None
    reserve_tx_id: UUID
    final_tx_id: UUID | None
    attempts: int
    created_at: datetime
    updated_at: datetime


_ROW_COLUMNS = [getattr(_w.c, name) for name in WithdrawalRow.__dataclass_fields__]


def row_columns() -> list[Any]:
    """The columns a WithdrawalRow is read from (select or RETURNING)."""
    return list(_ROW_COLUMNS)


def withdrawal_row(row: Any) -> WithdrawalRow:
    """A result row as a WithdrawalRow, mapped by column name."""
    mapping = row._mapping
    return WithdrawalRow(**{name: mapping[name] for name in WithdrawalRow.__dataclass_fields__})


async def get(
    session: AsyncSession, *, withdrawal_id: UUID, merchant_id: int | None = None
) -> WithdrawalRow | None:
    query = select(*_ROW_COLUMNS).where(_w.c.id == withdrawal_id)
    if merchant_id is not None:
        query = query.where(_w.c.merchant_id == merchant_id)
    row = (await session.execute(query)).first()
    return withdrawal_row(row) if row else None


async def list_for_merchant(
    session: AsyncSession,
    *,
    merchant_id: int,
    status: WithdrawalStatus | None,
    before: tuple[datetime, UUID] | None,
    limit: int,
) -> list[WithdrawalRow]:
    """Newest first, keyset-paginated on (created_at, id)."""
    query = (
        select(*_ROW_COLUMNS)
        .where(_w.c.merchant_id == merchant_id)
        .order_by(_w.c.created_at.desc(), _w.c.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(_w.c.status == status)
    if before is not None:
        query = query.where(tuple_(_w.c.created_at, _w.c.id) < tuple_(*before))
    return [withdrawal_row(row) for row in await session.execute(query)]
