"""Ledger and pool SQL as Core statements: this sits on the withdrawal hot path."""

import uuid
from decimal import Decimal
from typing import cast

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import CreditPool, LedgerAccount, LedgerEntry, LedgerKind

# The tables themselves, not the mapped classes: no ORM compile step or identity map here.
_entries = cast(Table, LedgerEntry.__table__)
_pool = cast(Table, CreditPool.__table__)
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


async def add_to_pool(session: AsyncSession, *, amount: Decimal) -> Decimal:
    """Raise (or, with a negative amount, lower) the pool; returns the new available amount.

    The UPDATE takes the pool row lock until the caller's transaction ends, so call it last.
    """
    available = await session.scalar(
        update(_pool)
        .where(_pool.c.id == POOL_ROW_ID)
        .values(available=_pool.c.available + amount, updated_at=func.now())
        .returning(_pool.c.available)
    )
    if available is None:
        raise RuntimeError("the credit_pool row is missing (migrations create it)")
    return Decimal(available)
