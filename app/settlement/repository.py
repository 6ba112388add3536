"""SQL for settlement_payouts, as plain statements on asyncpg's pool (the payout path is hot).

Each function is one statement, and each statement run on the pool is its own transaction.
The SQLAlchemy model (app/models/settlement.py) still defines the table, for Alembic.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

import asyncpg

from app.models.settlement import PayoutStatus

# Built once: the text is also the key of asyncpg's per-connection prepared-statement cache.
# The claim comes with the lease: the request that inserts the payout calls the bank.
_INSERT_PENDING = """
INSERT INTO settlement_payouts
    (withdrawal_id, merchant_id, account_id, amount, bank_account, status, lease_until)
VALUES ($1, $2, $3, $4, $5, 'PENDING', now() + make_interval(secs => $6))
ON CONFLICT (withdrawal_id) DO NOTHING
RETURNING withdrawal_id, merchant_id, account_id, amount, bank_account, status,
    bank_reference, failure_code, lease_until
"""
_GET = """
SELECT withdrawal_id, merchant_id, account_id, amount, bank_account, status,
    bank_reference, failure_code, lease_until
FROM settlement_payouts
WHERE withdrawal_id = $1
"""
_TAKE_LEASE = """
UPDATE settlement_payouts
SET lease_until = now() + make_interval(secs => $2)
WHERE withdrawal_id = $1 AND status = 'PENDING'
    AND (lease_until IS NULL OR lease_until <= now())
RETURNING withdrawal_id, merchant_id, account_id, amount, bank_account, status,
    bank_reference, failure_code, lease_until
"""
_GIVE_UP_LEASE = """
UPDATE settlement_payouts
SET lease_until = NULL
WHERE withdrawal_id = $1 AND status = 'PENDING' AND lease_until = $2
"""
_RECORD_OUTCOME = """
UPDATE settlement_payouts
SET status = $2, bank_reference = $3, failure_code = $4, lease_until = NULL
WHERE withdrawal_id = $1 AND status = 'PENDING'
RETURNING withdrawal_id, merchant_id, account_id, amount, bank_account, status,
    bank_reference, failure_code, lease_until
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
    lease_until: datetime | None


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
        lease_until=row["lease_until"],
    )


async def insert_pending(
    db: asyncpg.Pool,
    *,
    withdrawal_id: UUID,
    merchant_id: int,
    account_id: UUID,
    amount: Decimal,
    bank_account: str,
    lease_s: float,
) -> Payout | None:
    """Claim the withdrawal as a PENDING payout, leased for `lease_s`; None if a payout
    already has it."""
    # A concurrent duplicate's INSERT waits on the first one's uncommitted row, then does
    # nothing and returns no row; the caller reads the winner with a separate statement.
    row = await db.fetchrow(
        _INSERT_PENDING, withdrawal_id, merchant_id, account_id, amount, bank_account, lease_s
    )
    return _payout(row)


async def take_lease(db: asyncpg.Pool, *, withdrawal_id: UUID, lease_s: float) -> Payout | None:
    """Lease a PENDING payout nobody holds (or whose lease expired); None if that fails."""
    # The row lock makes this a compare-and-set: of two racing requests, one gets the row.
    return _payout(await db.fetchrow(_TAKE_LEASE, withdrawal_id, lease_s))


async def give_up_lease(db: asyncpg.Pool, *, withdrawal_id: UUID, lease_until: datetime) -> None:
    """End our lease early (the bank call failed), unless a later request took it over."""
    await db.execute(_GIVE_UP_LEASE, withdrawal_id, lease_until)


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
