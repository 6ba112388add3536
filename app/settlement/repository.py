"""SQL for settlement_payouts, as Core statements (the payout path is a hot path).

Each function is one statement, so callers can run it on an autocommit connection.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast
from uuid import UUID

from sqlalchemy import Row, Table, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.models.settlement import PayoutStatus, SettlementPayout

payouts = cast(Table, SettlementPayout.__table__)

# Built once with named parameters: building a statement per call (its values, its cache key)
# cost more CPU than executing it.
_INSERT_PENDING = (
    insert(payouts)
    .values(
        withdrawal_id=bindparam("withdrawal_id"),
        merchant_id=bindparam("merchant_id"),
        account_id=bindparam("account_id"),
        amount=bindparam("amount"),
        bank_account=bindparam("bank_account"),
        status=PayoutStatus.PENDING,
    )
    .on_conflict_do_nothing(index_elements=[payouts.c.withdrawal_id])
    .returning(*payouts.c)
)
_GET = select(payouts).where(payouts.c.withdrawal_id == bindparam("withdrawal_id"))
_RECORD_OUTCOME = (
    update(payouts)
    .where(
        # Not named after a column: those names are taken by the SET clause's parameters.
        payouts.c.withdrawal_id == bindparam("payout_id"),
        payouts.c.status == PayoutStatus.PENDING,
    )
    .values(
        status=bindparam("status"),
        bank_reference=bindparam("bank_reference"),
        failure_code=bindparam("failure_code"),
    )
    .returning(*payouts.c)
)


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


def _payout(row: Row[Any]) -> Payout:
    return Payout(
        withdrawal_id=row.withdrawal_id,
        merchant_id=row.merchant_id,
        account_id=row.account_id,
        amount=row.amount,
        bank_account=row.bank_account,
        status=PayoutStatus(row.status),
        bank_reference=row.bank_reference,
        failure_code=row.failure_code,
    )


async def insert_pending(
    conn: AsyncConnection,
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
    inserted = (
        await conn.execute(
            _INSERT_PENDING,
            {
                "withdrawal_id": withdrawal_id,
                "merchant_id": merchant_id,
                "account_id": account_id,
                "amount": amount,
                "bank_account": bank_account,
            },
        )
    ).one_or_none()
    return _payout(inserted) if inserted is not None else None


async def get(conn: AsyncConnection, *, withdrawal_id: UUID) -> Payout | None:
    row = (await conn.execute(_GET, {"withdrawal_id": withdrawal_id})).one_or_none()
    return _payout(row) if row is not None else None


async def record_outcome(
    conn: AsyncConnection,
    *,
    withdrawal_id: UUID,
    status: PayoutStatus,
    bank_reference: str | None,
    failure_code: str | None,
) -> Payout | None:
    """Move a PENDING payout to its bank outcome; None if it is no longer PENDING."""
    # Only PENDING rows change, so a concurrent re-drive can never overwrite a final outcome.
    updated = (
        await conn.execute(
            _RECORD_OUTCOME,
            {
                "payout_id": withdrawal_id,
                "status": status,
                "bank_reference": bank_reference,
                "failure_code": failure_code,
            },
        )
    ).one_or_none()
    return _payout(updated) if updated is not None else None
