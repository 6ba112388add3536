"""Paying a withdrawal out exactly once.

Unlike the core's services, this one owns its durability, in three steps that are each one
statement on a connection of the app's one engine in AUTOCOMMIT (`repository.autocommit`),
so each is its own transaction, committed when it returns, before the next step starts:
claim the payout as PENDING (durable before the bank is called, so a crash leaves a claim and
no transaction or lock is held across the network), call the bank, record the outcome.

Why nothing is ever paid twice:
- the payout row's primary key is the withdrawal id, so concurrent duplicates share one row;
- a PENDING payout is leased (`lease_until`) to the request that calls the bank: a duplicate
  that arrives meanwhile answers PENDING without calling the bank again, and a later request
  takes the lease over only once it has expired (its holder crashed or hung);
- the bank is always called with the withdrawal id as its idempotency reference, so even a
  re-drive after an expired lease (whose holder may still be in the bank call) reaches the
  same single transfer;
- the outcome only ever replaces PENDING, so the first recorded outcome is final, and a
  refusal is recorded before it is answered (the core releases money only on that record).
"""

import logging
from decimal import Decimal
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from app.models.settlement import PayoutStatus
from app.settlement import repository
from app.settlement.bank import Bank, BankResult, BankUnavailable
from app.settlement.errors import BankUnavailableError, PayoutMismatch, PayoutNotFound
from app.settlement.repository import Payout, autocommit

logger = logging.getLogger("app.settlement")


async def withdraw(
    engine: AsyncEngine,
    *,
    bank: Bank,
    withdrawal_id: UUID,
    merchant_id: int,
    account_id: UUID,
    amount: Decimal,
    bank_account: str,
    lease_s: float,
) -> Payout:
    """Pay the withdrawal out once and return its outcome: PAID or REFUSED (the first one on
    repeats), or PENDING while another request is in the bank call for it."""
    payout, leased = await _claim(
        engine,
        withdrawal_id=withdrawal_id,
        merchant_id=merchant_id,
        account_id=account_id,
        amount=amount,
        bank_account=bank_account,
        lease_s=lease_s,
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
    if not leased:
        async with autocommit(engine) as conn:
            taken = await repository.take_lease(conn, withdrawal_id=withdrawal_id, lease_s=lease_s)
        if taken is None:
            # Another request holds the lease and is calling the bank (or has just recorded
            # the outcome): answer what is stored now rather than call the bank twice.
            return await _existing(engine, withdrawal_id)
        payout = taken
    assert payout.lease_until is not None

    # The bank call, with no transaction open; the stored order is what gets paid.
    try:
        result = await bank.pay(
            reference=payout.withdrawal_id, amount=payout.amount, account=payout.bank_account
        )
    except BankUnavailable as exc:
        logger.warning("bank unavailable for payout %s: %s", withdrawal_id, exc)
        # The outcome is unknown but nobody is calling the bank now: a retry may at once.
        async with autocommit(engine) as conn:
            await repository.give_up_lease(
                conn, withdrawal_id=withdrawal_id, lease_until=payout.lease_until
            )
        raise BankUnavailableError(
            "the bank did not answer; the payout is PENDING, send the same request again",
            extra={"withdrawal_id": str(withdrawal_id), "payout_status": PayoutStatus.PENDING},
        ) from exc

    payout = await _record(engine, withdrawal_id=withdrawal_id, result=result)
    logger.info("payout %s %s", withdrawal_id, payout.status)
    return payout


async def get_payout(engine: AsyncEngine, *, withdrawal_id: UUID) -> Payout:
    """The payout's current state (PENDING, PAID or REFUSED); PayoutNotFound if never received."""
    async with autocommit(engine) as conn:
        payout = await repository.get(conn, withdrawal_id=withdrawal_id)
    if payout is None:
        raise PayoutNotFound(f"no payout for withdrawal {withdrawal_id}")
    return payout


async def _claim(
    engine: AsyncEngine,
    *,
    withdrawal_id: UUID,
    merchant_id: int,
    account_id: UUID,
    amount: Decimal,
    bank_account: str,
    lease_s: float,
) -> tuple[Payout, bool]:
    # Step 1: the PENDING claim with its lease, committed as the INSERT returns (True); or the
    # earlier claim (False).
    async with autocommit(engine) as conn:
        claimed = await repository.insert_pending(
            conn,
            withdrawal_id=withdrawal_id,
            merchant_id=merchant_id,
            account_id=account_id,
            amount=amount,
            bank_account=bank_account,
            lease_s=lease_s,
        )
    if claimed is not None:
        return claimed, True
    return await _existing(engine, withdrawal_id), False


async def _record(engine: AsyncEngine, *, withdrawal_id: UUID, result: BankResult) -> Payout:
    # Step 3: the outcome, committed as the UPDATE returns; nothing if a duplicate was first.
    async with autocommit(engine) as conn:
        recorded = await repository.record_outcome(
            conn,
            withdrawal_id=withdrawal_id,
            status=result.status,
            bank_reference=result.bank_reference,
            failure_code=result.failure_code,
        )
    return recorded or await _existing(engine, withdrawal_id)


async def _existing(engine: AsyncEngine, withdrawal_id: UUID) -> Payout:
    # Our INSERT or UPDATE changed nothing: another request claimed the payout (or recorded
    # its outcome) first, and committed before ours returned (a conflicting write waits for
    # the winner's commit). Reading it takes a separate statement: under READ COMMITTED that
    # gets a new snapshot, which includes the winner's commit; the conflicting one's may not.
    async with autocommit(engine) as conn:
        payout = await repository.get(conn, withdrawal_id=withdrawal_id)
    if payout is None:  # pragma: no cover - payouts are never deleted
        raise RuntimeError(f"payout {withdrawal_id} was not changed but cannot be read")
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
