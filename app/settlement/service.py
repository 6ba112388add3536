"""Paying a withdrawal out exactly once.

Unlike the core's services, this one owns its transactions: it must commit the PENDING claim
before calling the bank (so no transaction or lock is held across the network and a crash
leaves a durable claim), then record the outcome in a second short transaction. The session
it is given must therefore have no transaction open.

Why nothing is ever paid twice:
- the payout row's primary key is the withdrawal id, so concurrent duplicates share one row;
- the bank is always called with the withdrawal id as its idempotency reference, so a
  re-drive of a PENDING payout (after a crash or a transient failure), or two requests racing
  on it, reach the same single transfer;
- the outcome only ever replaces PENDING, so the first recorded outcome is final.
"""

import logging
from decimal import Decimal
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.models.settlement import PayoutStatus
from app.settlement import repository
from app.settlement.bank import Bank, BankUnavailable
from app.settlement.errors import BankUnavailableError, PayoutMismatch, PayoutNotFound
from app.settlement.repository import Payout

logger = logging.getLogger("app.settlement")


async def withdraw(
    session: AsyncSession,
    *,
    bank: Bank,
    withdrawal_id: UUID,
    merchant_id: int,
    account_id: UUID,
    amount: Decimal,
    bank_account: str,
) -> Payout:
    """Pay the withdrawal out once and return its definite outcome (the first one on repeats)."""
    # Transaction 1: claim the withdrawal (or find the earlier claim) and commit at once.
    async with session.begin():
        payout = await repository.insert_pending_or_get(
            session,
            withdrawal_id=withdrawal_id,
            merchant_id=merchant_id,
            account_id=account_id,
            amount=amount,
            bank_account=bank_account,
        )
    _check_same_order(
        payout,
        merchant_id=merchant_id,
        account_id=account_id,
        amount=amount,
        bank_account=bank_account,
    )
    if payout.status != PayoutStatus.PENDING:
        return payout

    # The bank call, with no transaction open; the stored order is what gets paid.
    try:
        result = await bank.pay(
            reference=payout.withdrawal_id, amount=payout.amount, account=payout.bank_account
        )
    except BankUnavailable as exc:
        logger.warning("bank unavailable for payout %s: %s", withdrawal_id, exc)
        raise BankUnavailableError(
            "the bank did not answer; the payout is PENDING, send the same request again",
            extra={"withdrawal_id": str(withdrawal_id), "payout_status": PayoutStatus.PENDING},
        ) from exc

    # Transaction 2: record the outcome (a concurrent duplicate may have recorded it already).
    async with session.begin():
        payout = await repository.record_outcome(
            session,
            withdrawal_id=withdrawal_id,
            status=result.status,
            bank_reference=result.bank_reference,
            failure_code=result.failure_code,
        )
    logger.info("payout %s %s", withdrawal_id, payout.status)
    return payout


async def get_payout(session: AsyncSession, *, withdrawal_id: UUID) -> Payout:
    """The payout's current state (PENDING, PAID or REFUSED); PayoutNotFound if never received."""
    async with session.begin():
        payout = await repository.get(session, withdrawal_id=withdrawal_id)
    if payout is None:
        raise PayoutNotFound(f"no payout for withdrawal {withdrawal_id}")
    return payout


def _check_same_order(
    payout: Payout, *, merchant_id: int, account_id: UUID, amount: Decimal, bank_account: str
) -> None:
    # One withdrawal id is one order: a retry that changes it is a core bug, never a new payout.
    differs = [
        name
        for name, stored, asked in (
            ("merchant_id", payout.merchant_id, merchant_id),
            ("account_id", payout.account_id, account_id),
            ("amount", payout.amount, amount),
            ("account", payout.bank_account, bank_account),
        )
        if stored != asked
    ]
    if differs:
        raise PayoutMismatch(
            f"withdrawal {payout.withdrawal_id} was first received with a different "
            + ", ".join(differs),
            extra={"fields": differs},
        )
