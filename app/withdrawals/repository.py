"""Withdrawal SQL as Core statements: this is the money hot path, so every lock is visible."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, cast
from uuid import UUID

from sqlalchemy import Table, bindparam, func, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Executor
from app.models import Withdrawal, WithdrawalStatus

_w = cast(Table, Withdrawal.__table__)

OPEN_STATUSES = (WithdrawalStatus.QUEUED, WithdrawalStatus.PROCESSING)


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


@dataclass(frozen=True)
class Reservation:
    """What creditpool_reserve() did (alembic/versions/0002 lists the outcomes)."""

    outcome: str
    available_credit: Decimal | None
    stored_hash: str | None
    stored_status: int | None
    stored_body: dict[str, Any] | None
    withdrawal: WithdrawalRow | None


# Transaction 1 in one statement: the key, the line lock, the writes and the pool row last, all
# inside PostgreSQL; run in autocommit, the pool row is released as soon as it commits.
_RESERVE = (
    text(
        "SELECT * FROM creditpool_reserve(:merchant_id, :key, :request_hash, :amount, :status, "
        ":withdrawal_id, :reserve_tx_id, :pending_body, :credit_refusal_body, "
        ":pool_refusal_body)"
    )
    .bindparams(
        bindparam("pending_body", type_=JSONB(none_as_null=True)),
        bindparam("credit_refusal_body", type_=JSONB),
        bindparam("pool_refusal_body", type_=JSONB),
    )
    .columns(stored_body=JSONB)
)

# Transaction 2 in one statement (alembic/versions/0003): final status once, ledger entries,
# the key's final answer, and for a release the line and then the pool row.
_FINISH = text(
    "SELECT * FROM creditpool_finish(:withdrawal_id, :status, :final_tx_id, :bank_reference, "
    ":failure_code, :response_status, :response_body)"
).bindparams(bindparam("response_body", type_=JSONB))


async def reserve(
    conn: Executor,
    *,
    merchant_id: int,
    key: str,
    request_hash: str,
    amount: Decimal,
    status: str,
    withdrawal_id: UUID,
    reserve_tx_id: UUID,
    pending_body: dict[str, Any] | None,
    credit_refusal_body: dict[str, Any],
    pool_refusal_body: dict[str, Any],
) -> Reservation:
    """Run transaction 1 as one statement; every outcome is complete when it returns."""
    row = (
        await conn.execute(
            _RESERVE,
            {
                "merchant_id": merchant_id,
                "key": key,
                "request_hash": request_hash,
                "amount": amount,
                "status": status,
                "withdrawal_id": withdrawal_id,
                "reserve_tx_id": reserve_tx_id,
                "pending_body": pending_body,
                "credit_refusal_body": credit_refusal_body,
                "pool_refusal_body": pool_refusal_body,
            },
        )
    ).one()
    outcome, available, stored_hash, stored_status, stored_body, *columns = row
    withdrawal = WithdrawalRow(*columns) if outcome == "RESERVED" else None
    return Reservation(outcome, available, stored_hash, stored_status, stored_body, withdrawal)


@dataclass(frozen=True)
class Finish:
    """What creditpool_finish() did: `finished` is false when the withdrawal was already final."""

    finished: bool
    withdrawal: WithdrawalRow


async def finish(
    conn: Executor,
    *,
    withdrawal_id: UUID,
    status: WithdrawalStatus,
    final_tx_id: UUID,
    response_status: int,
    response_body: dict[str, Any],
    bank_reference: str | None = None,
    failure_code: str | None = None,
) -> Finish:
    """Move an open withdrawal to its final status with everything that goes with it, once.

    `response_*` is the answer replays of the key get from now on. The status condition
    inside makes finishing happen exactly once when a request, a worker and the reconciler
    race on the same withdrawal; the withdrawal's row lock serialises them.
    """
    finished, *columns = (
        await conn.execute(
            _FINISH,
            {
                "withdrawal_id": withdrawal_id,
                "status": status,
                "final_tx_id": final_tx_id,
                "bank_reference": bank_reference,
                "failure_code": failure_code,
                "response_status": response_status,
                "response_body": response_body,
            },
        )
    ).one()
    return Finish(finished, WithdrawalRow(*columns))


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
    conn: Executor, *, cutoff: datetime, statuses: tuple[str, ...], limit: int
) -> list[WithdrawalRow]:
    """Open withdrawals untouched since `cutoff`, oldest first: the reconciler's work list."""
    query = (
        select(*_ROW_COLUMNS)
        .where(_w.c.status.in_(statuses), _w.c.updated_at < cutoff)
        .order_by(_w.c.updated_at)
        .limit(limit)
    )
    return [WithdrawalRow(*row) for row in await conn.execute(query)]


# Built once: every queued payout runs it.
_START_PROCESSING = (
    update(_w)
    .where(_w.c.id == bindparam("withdrawal_id"), _w.c.status.in_(OPEN_STATUSES))
    .values(
        status=WithdrawalStatus.PROCESSING,
        attempts=_w.c.attempts + 1,
        updated_at=func.now(),
    )
    .returning(*_ROW_COLUMNS)
)


async def start_processing(conn: Executor, *, withdrawal_id: UUID) -> WithdrawalRow | None:
    """Mark an open withdrawal PROCESSING before a payout attempt; None if already final."""
    row = (await conn.execute(_START_PROCESSING, {"withdrawal_id": withdrawal_id})).first()
    return WithdrawalRow(*row) if row else None


async def touch(conn: Executor, *, withdrawal_id: UUID) -> None:
    """Count an attempt and push the withdrawal to the back of the reconciler's list."""
    await conn.execute(
        update(_w)
        .where(_w.c.id == withdrawal_id, _w.c.status.in_(OPEN_STATUSES))
        .values(attempts=_w.c.attempts + 1, updated_at=func.now())
    )
