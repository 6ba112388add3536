"""Ledger and pool SQL as Core statements: this sits on the withdrawal hot path."""

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import cast

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import (
    CreditPool,
    LedgerAccount,
    LedgerEntry,
    LedgerKind,
    PoolTopUp,
    Withdrawal,
    WithdrawalStatus,
)
from app.money import COLUMN_MAX

# The tables themselves, not the mapped classes: no ORM compile step or identity map here.
_entries = cast(Table, LedgerEntry.__table__)
_pool = cast(Table, CreditPool.__table__)
_topups = cast(Table, PoolTopUp.__table__)
_withdrawals = cast(Table, Withdrawal.__table__)
POOL_ROW_ID = 1


async def insert_transfer(
    session: AsyncSession,
    *,
    tx_id: uuid.UUID,
    kind: LedgerKind,
    debit_account: LedgerAccount,
    credit_account: LedgerAccount,
    amount: Decimal,
    withdrawal_id: uuid.UUID | None = None,
) -> None:
    """Write one balanced transaction: `amount` leaves debit_account and arrives at credit_account.

    Both entries go in one multi-row INSERT, so a transaction is never half written even
    outside an explicit transaction block, and it costs one round trip.
    """
    # A non-positive amount would silently reverse the direction of the transfer.
    if amount <= 0:
        raise ValueError(f"a transfer amount must be positive, got {amount}")
    if debit_account == credit_account:
        raise ValueError(f"a transfer needs two different accounts, got {debit_account}")
    leg = {"tx_id": tx_id, "kind": kind, "withdrawal_id": withdrawal_id}
    await session.execute(
        insert(_entries).values(
            [
                {**leg, "account": debit_account, "amount": -amount},
                {**leg, "account": credit_account, "amount": amount},
            ]
        )
    )


async def insert_entries(session: AsyncSession, entries: list[dict[str, object]]) -> None:
    """Write ledger rows (balanced transactions, see ledger.service) in one INSERT."""
    await session.execute(insert(_entries).values(entries))


async def account_balances(session: AsyncSession) -> dict[LedgerAccount, Decimal]:
    """Every ledger account's balance (the sum of its signed entries), zero when it has none."""
    rows = await session.execute(
        select(_entries.c.account, func.sum(_entries.c.amount)).group_by(_entries.c.account)
    )
    balances = dict.fromkeys(LedgerAccount, Decimal("0.00"))
    for account, balance in rows:
        balances[LedgerAccount(account)] = balance
    return balances


async def pool_available(session: AsyncSession) -> Decimal:
    """The pool row's available amount."""
    available = await session.scalar(select(_pool.c.available).where(_pool.c.id == POOL_ROW_ID))
    if available is None:
        raise RuntimeError("the credit_pool row is missing (migrations create it)")
    return Decimal(available)


async def add_to_pool(session: AsyncSession, *, amount: Decimal) -> Decimal | None:
    """Raise (or, with a negative amount, lower) the pool; returns the new available amount,
    or None (and changes nothing) when it would pass what NUMERIC(18, 2) holds.

    The UPDATE takes the pool row lock until the caller's transaction ends, so call it last.
    """
    result = await session.execute(
        update(_pool)
        .where(_pool.c.id == POOL_ROW_ID, _pool.c.available + amount <= COLUMN_MAX)
        .values(available=_pool.c.available + amount, updated_at=func.now())
        .returning(_pool.c.available)
    )
    available = result.scalar()
    return None if available is None else Decimal(available)


async def in_flight_total(session: AsyncSession) -> Decimal:
    """The money reserved for open (QUEUED or PROCESSING) withdrawals, from their rows."""
    total = await session.scalar(
        select(func.coalesce(func.sum(_withdrawals.c.amount), 0)).where(
            _withdrawals.c.status.in_((WithdrawalStatus.QUEUED, WithdrawalStatus.PROCESSING))
        )
    )
    return Decimal(total or 0)


@dataclass(frozen=True)
class TopUpRow:
    tx_id: uuid.UUID
    request_hash: str
    pool_available: Decimal | None


async def claim_top_up(
    session: AsyncSession,
    *,
    tx_id: uuid.UUID,
    amount: Decimal,
    key: str | None,
    request_hash: str,
    reference: str | None,
) -> bool:
    """Record a top-up before it moves money; False when its key or reference is taken.

    A concurrent claim of the same key or reference waits here until the first commits (then
    it is taken) or rolls back (then this one claims it).
    """
    claimed = await session.scalar(
        pg_insert(_topups)
        .values(
            tx_id=tx_id,
            amount=amount,
            idempotency_key=key,
            request_hash=request_hash,
            reference=reference,
        )
        .on_conflict_do_nothing()
        .returning(_topups.c.tx_id)
    )
    return claimed is not None


async def find_top_up(
    session: AsyncSession, *, key: str | None = None, reference: str | None = None
) -> TopUpRow | None:
    """The top-up with this Idempotency-Key, or (given instead) with this reference."""
    column, value = (
        (_topups.c.idempotency_key, key) if key is not None else (_topups.c.reference, reference)
    )
    row = (
        await session.execute(
            select(_topups.c.tx_id, _topups.c.request_hash, _topups.c.pool_available).where(
                column == value
            )
        )
    ).first()
    return TopUpRow(*row) if row else None


async def store_top_up_answer(
    session: AsyncSession, *, tx_id: uuid.UUID, pool_available: Decimal
) -> None:
    await session.execute(
        update(_topups).where(_topups.c.tx_id == tx_id).values(pool_available=pool_available)
    )
