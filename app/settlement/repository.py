"""SQL for settlement_payouts, as plain statements on asyncpg's pool (the payout path is hot).

Each function is one statement, and each statement run on the pool is its own transaction.
The SQLAlchemy model (app/models/settlement.py) still defines the table, for Alembic.
"""

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

import asyncpg

from app.models.settlement import PayoutStatus

# Built once: the text is also the key of asyncpg's per-connection prepared-statement cache.
_INSERT_PENDING = """
INSERT INTO settlement_payouts
    (withdrawal_id, merchant_id, account_id, amount, bank_account, status)
VALUES ($1, $2, $3, $4, $5, 'PENDING')
ON CONFLICT (withdrawal_id) DO NOTHING
RETURNING withdrawal_id, merchant_id, account_id, amount, bank_account, status,
    bank_reference, failure_code
"""
_GET = """
SELECT withdrawal_id, merchant_id, account_id, amount, bank_account, status,
    bank_reference, failure_code
FROM settlement_payouts
WHERE withdrawal_id = $1
"""
_RECORD_OUTCOME = """
UPDATE settlement_payouts
SET status = $2, bank_reference = $3, failure_code = $4
WHERE withdrawal_id = $1 AND status = 'PENDING'
RETURNING withdrawal_id, merchant_id, account_id, amount, bank_account, status,
    bank_reference, failure_code
"""


@dataclass(frozen=True, slots=True)
class Payout:
    withdrawal_id: UUID
    merchant_id: int
    account_id: UUID
    amount: Decimal
    bank_account: str
    status: PayoutStatus
    bank_reference: str | None
    failure_code: str | None


def _payout(row: asyncpg.Record | None) -> Payout | None:
    if row is None:
        return None
    return Payout(
        withdrawal_id=row["withdrawal_id"],
        merchant_id=row["merchant_id"],
        account_id=row["account_id"],
        amount=row["amount"],
        bank_account=row["bank_account"],
        status=PayoutStatus(row["status"]),
        bank_reference=row["bank_reference"],
        failure_code=row["failure_code"],
    )


async def insert_pending(
    db: asyncpg.Pool,
    *,
    withdrawal_id: UUID,
    merchant_id: int,
    account_id: UUID,
    amount: Decimal,
    bank_account: str,
) -> Payout | None:
    """Claim the withdrawal as a PENDING payout; None if a payout already has it."""
    # A concurrent duplicate's INSERT waits on the first one's uncommitted row, then does
    # nothing and returns no row; the caller reads the winner with a separate statement.
    row = await db.fetchrow(
        _INSERT_PENDING, withdrawal_id, merchant_id, account_id, amount, bank_account
    )
    return _payout(row)


async def get(db: asyncpg.Pool, *, withdrawal_id: UUID) -> Payout | None:
    return _payout(await db.fetchrow(_GET, withdrawal_id))


async def record_outcome(
    db: asyncpg.Pool,
    *,
    withdrawal_id: UUID,
    status: PayoutStatus,
    bank_reference: str | None,
    failure_code: str | None,
) -> Payout | None:
    """Move a PENDING payout to its bank outcome; None if it is no longer PENDING."""
    # Only PENDING rows change, so a concurrent re-drive can never overwrite a final outcome.
    row = await db.fetchrow(
        _RECORD_OUTCOME, withdrawal_id, status.value, bank_reference, failure_code
    )
    return _payout(row)
