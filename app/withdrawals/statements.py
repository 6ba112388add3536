"""The money path's SQL: each step is one statement on the asyncpg pool (app.db), so each is
its own transaction and every lock it takes is released the moment it commits.

Transaction 1 and transaction 2 are PL/pgSQL functions (alembic/versions/0003): the key, the
merchant's line and the pool row, in that order, inside PostgreSQL.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from app.errors import money_statement
from app.models import WithdrawalStatus
from app.withdrawals.repository import WithdrawalRow

# The function results end with the withdrawal's columns (w_*), in WithdrawalRow's order.
_RESERVE = "SELECT * FROM creditpool_reserve($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
_FINISH = "SELECT * FROM creditpool_finish($1, $2, $3, $4, $5, $6, $7)"
# Open means QUEUED or PROCESSING; the columns are WithdrawalRow's fields, in order.
_START_PROCESSING = """
UPDATE withdrawals SET status = 'PROCESSING', attempts = attempts + 1, updated_at = now()
 WHERE id = $1 AND status IN ('QUEUED', 'PROCESSING')
RETURNING id, merchant_id, account_id, amount, bank_account, status, idempotency_key,
          bank_reference, failure_code, reserve_tx_id, final_tx_id, attempts, created_at,
          updated_at
"""
_BY_KEY = """
SELECT id, merchant_id, account_id, amount, bank_account, status, idempotency_key,
       bank_reference, failure_code, reserve_tx_id, final_tx_id, attempts, created_at,
       updated_at
  FROM withdrawals
 WHERE merchant_id = $1 AND idempotency_key = $2
"""
_OPEN_OLDER_THAN = """
SELECT id, merchant_id, account_id, amount, bank_account, status, idempotency_key,
       bank_reference, failure_code, reserve_tx_id, final_tx_id, attempts, created_at,
       updated_at
  FROM withdrawals
 WHERE status IN ('QUEUED', 'PROCESSING') AND updated_at < $1
 ORDER BY updated_at
 LIMIT $2
"""


def _row(record: asyncpg.Record, first: int = 0) -> WithdrawalRow:
    """The withdrawal's columns, which come last in every statement above."""
    return WithdrawalRow(*list(record.values())[first:])


@dataclass(frozen=True)
class Reservation:
    """What creditpool_reserve() did (alembic/versions/0003 lists the outcomes)."""

    outcome: str
    stored_hash: str | None
    stored_status: int | None
    stored_body: dict[str, Any] | None
    withdrawal: WithdrawalRow | None


async def reserve(
    db: asyncpg.Pool,
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
    """Transaction 1; every outcome is complete (committed) when this returns.

    A connection lost once the statement is sent raises OutcomeUnknown: it may have committed.
    """
    async with db.acquire() as conn, money_statement():
        record = await conn.fetchrow(
            _RESERVE,
            merchant_id,
            key,
            request_hash,
            amount,
            status,
            withdrawal_id,
            reserve_tx_id,
            pending_body,
            credit_refusal_body,
            pool_refusal_body,
        )
    assert record is not None
    outcome = record["outcome"]
    return Reservation(
        outcome,
        record["stored_hash"],
        record["stored_status"],
        record["stored_body"],
        _row(record, first=5) if outcome == "RESERVED" else None,
    )


@dataclass(frozen=True)
class Finish:
    """What creditpool_finish() did: `finished` is false when the withdrawal was already final."""

    finished: bool
    withdrawal: WithdrawalRow


async def finish(
    db: asyncpg.Pool,
    *,
    withdrawal_id: UUID,
    status: WithdrawalStatus,
    final_tx_id: UUID,
    response_status: int,
    response_body: dict[str, Any],
    bank_reference: str | None = None,
    failure_code: str | None = None,
) -> Finish:
    """Transaction 2: move an open withdrawal to its final status with everything that goes
    with it, exactly once (`response_*` is what replays of its key get from now on).

    A request, a worker and the reconciler may race here; the withdrawal's row lock
    serialises them and only the first finds it open.
    """
    record = await db.fetchrow(
        _FINISH,
        withdrawal_id,
        str(status),
        final_tx_id,
        bank_reference,
        failure_code,
        response_status,
        response_body,
    )
    assert record is not None
    return Finish(record["finished"], _row(record, first=1))


async def start_processing(db: asyncpg.Pool, *, withdrawal_id: UUID) -> WithdrawalRow | None:
    """Mark an open withdrawal PROCESSING before a payout attempt; None if already final."""
    record = await db.fetchrow(_START_PROCESSING, withdrawal_id)
    return _row(record) if record else None


async def open_older_than(db: asyncpg.Pool, *, cutoff: datetime, limit: int) -> list[WithdrawalRow]:
    """Open withdrawals untouched since `cutoff`, oldest first: the reconciler's work list."""
    return [_row(record) for record in await db.fetch(_OPEN_OLDER_THAN, cutoff, limit)]


async def by_key(db: asyncpg.Pool, *, merchant_id: int, key: str) -> WithdrawalRow | None:
    """The withdrawal a merchant made with this idempotency key, if any."""
    record = await db.fetchrow(_BY_KEY, merchant_id, key)
    return _row(record) if record else None
