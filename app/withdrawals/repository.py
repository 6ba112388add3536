"""Withdrawal SQL as Core statements: this is the money hot path, so every lock is visible."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, cast
from uuid import UUID

from sqlalchemy import Table, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Merchant, MerchantCredit, WalletAccount, Withdrawal, WithdrawalStatus

_w = cast(Table, Withdrawal.__table__)
_credits = cast(Table, MerchantCredit.__table__)
_merchants = cast(Table, Merchant.__table__)
_accounts = cast(Table, WalletAccount.__table__)

OPEN_STATUSES = (WithdrawalStatus.QUEUED, WithdrawalStatus.PROCESSING)


@dataclass(frozen=True)
class LockedLine:
    status: str
    bank_account: str
    account_id: UUID
    credit_limit: Decimal
    utilized_amount: Decimal

    @property
    def available(self) -> Decimal:
        return self.credit_limit - self.utilized_amount


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


async def lock_credit_line(session: AsyncSession, *, merchant_id: int) -> LockedLine | None:
    """Lock the merchant's line (first lock of every money movement), with status and headroom."""
    row = (
        await session.execute(
            select(
                _merchants.c.status,
                _merchants.c.bank_account,
                _accounts.c.id,
                _credits.c.credit_limit,
                _credits.c.utilized_amount,
            )
            .select_from(_credits)
            .join(_merchants, _merchants.c.id == _credits.c.merchant_id)
            .join(_accounts, _accounts.c.merchant_id == _credits.c.merchant_id)
            .where(_credits.c.merchant_id == merchant_id)
            .with_for_update(of=_credits)
        )
    ).first()
    return LockedLine(*row) if row else None


async def change_utilized(session: AsyncSession, *, merchant_id: int, delta: Decimal) -> None:
    # The CHECK (0 <= utilized <= limit) is the last guard if a caller got the arithmetic wrong.
    await session.execute(
        update(_credits)
        .where(_credits.c.merchant_id == merchant_id)
        .values(utilized_amount=_credits.c.utilized_amount + delta)
    )


async def insert_withdrawal(session: AsyncSession, **values: Any) -> WithdrawalRow | None:
    """Insert a withdrawal; None if (merchant, idempotency key) already has one."""
    row = (
        await session.execute(
            insert(_w).values(**values).on_conflict_do_nothing().returning(*_ROW_COLUMNS)
        )
    ).first()
    return WithdrawalRow(*row) if row else None


async def finish(
    session: AsyncSession,
    *,
    withdrawal_id: UUID,
    status: WithdrawalStatus,
    final_tx_id: UUID,
    bank_reference: str | None = None,
    failure_code: str | None = None,
) -> WithdrawalRow | None:
    """Move an open withdrawal to its final status; None if it was already final.

    The status condition makes finishing happen exactly once when a request, a worker and the
    reconciler race on the same withdrawal; the row lock serialises them.
    """
    row = (
        await session.execute(
            update(_w)
            .where(_w.c.id == withdrawal_id, _w.c.status.in_(OPEN_STATUSES))
            .values(
                status=status,
                final_tx_id=final_tx_id,
                bank_reference=bank_reference,
                failure_code=failure_code,
                updated_at=func.now(),
            )
            .returning(*_ROW_COLUMNS)
        )
    ).first()
    return WithdrawalRow(*row) if row else None


async def get(
    session: AsyncSession, *, withdrawal_id: UUID, merchant_id: int | None = None
) -> WithdrawalRow | None:
    query = select(*_ROW_COLUMNS).where(_w.c.id == withdrawal_id)
    if merchant_id is not None:
        query = query.where(_w.c.merchant_id == merchant_id)
    row = (await session.execute(query)).first()
    return WithdrawalRow(*row) if row else None


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
    return [WithdrawalRow(*row) for row in await session.execute(query)]


async def open_older_than(
    session: AsyncSession, *, cutoff: datetime, statuses: tuple[str, ...], limit: int
) -> list[WithdrawalRow]:
    """Open withdrawals untouched since `cutoff`, oldest first: the reconciler's work list."""
    query = (
        select(*_ROW_COLUMNS)
        .where(_w.c.status.in_(statuses), _w.c.updated_at < cutoff)
        .order_by(_w.c.updated_at)
        .limit(limit)
    )
    return [WithdrawalRow(*row) for row in await session.execute(query)]


async def start_processing(session: AsyncSession, *, withdrawal_id: UUID) -> WithdrawalRow | None:
    """Mark an open withdrawal PROCESSING before a payout attempt; None if already final."""
    row = (
        await session.execute(
            update(_w)
            .where(_w.c.id == withdrawal_id, _w.c.status.in_(OPEN_STATUSES))
            .values(
                status=WithdrawalStatus.PROCESSING,
                attempts=_w.c.attempts + 1,
                updated_at=func.now(),
            )
            .returning(*_ROW_COLUMNS)
        )
    ).first()
    return WithdrawalRow(*row) if row else None


async def touch(session: AsyncSession, *, withdrawal_id: UUID) -> None:
    """Count an attempt and push the withdrawal to the back of the reconciler's list."""
    await session.execute(
        update(_w)
        .where(_w.c.id == withdrawal_id, _w.c.status.in_(OPEN_STATUSES))
        .values(attempts=_w.c.attempts + 1, updated_at=func.now())
    )
