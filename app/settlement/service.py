"""Paying withdrawals out exactly once, in batches (the single endpoint is a batch of one).

Unlike the core's services, this one owns its durability, in three steps that are each one
set-based statement for the whole batch on a connection of the app's one engine in
AUTOCOMMIT (`repository.autocommit`), so each is its own transaction, committed when it
returns, before the next step starts: claim the payouts as PENDING (durable before the bank is
called, so a crash leaves claims and no transaction or lock is held across the network), call
the bank for the batch, record the outcomes. A step may need a second statement for the
payouts whose first one changed nothing (a duplicate got there first): reading them.

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
from collections.abc import Sequence
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.errors import AppError
from app.models.settlement import PayoutStatus
from app.settlement import repository
from app.settlement.bank import Bank, BankResult, BankUnavailable, Transfer
from app.settlement.errors import BankUnavailableError, PayoutMismatch, PayoutNotFound
from app.settlement.repository import Order, Outcome, Payout, autocommit

logger = logging.getLogger("app.settlement")

# One answer per order: the payout (PAID, REFUSED, or PENDING while another request is in the
# bank call for it), or why this order alone failed.
Answer = Payout | PayoutMismatch | BankUnavailableError


async def withdraw(engine: AsyncEngine, *, bank: Bank, order: Order, lease_s: float) -> Payout:
    """Pay one withdrawal out once (a batch of one): PAID or REFUSED (the first one on
    repeats), or PENDING while another request is in the bank call for it."""
    [answer] = await withdraw_batch(engine, bank=bank, orders=[order], lease_s=lease_s)
    if isinstance(answer, AppError):
        raise answer
    return answer


async def withdraw_batch(
    engine: AsyncEngine, *, bank: Bank, orders: Sequence[Order], lease_s: float
) -> list[Answer]:
    """Pay each order out once, set-based for the whole batch; one answer per order, in order.

    The orders must have distinct withdrawal ids (the batch endpoint's schema checks it).
    """
    assert len({order.withdrawal_id for order in orders}) == len(orders), "distinct ids"
    async with autocommit(engine) as conn:
        answers, leased = await _claim(conn, orders, lease_s=lease_s)
    if leased:
        # Step 2, the bank call, with no transaction open; the stored orders are what get paid.
        results = await bank.pay_batch(
            [Transfer(p.withdrawal_id, p.amount, p.bank_account) for p in leased]
        )
        answers |= await _record(engine, leased, results)
    return [answers[order.withdrawal_id] for order in orders]


async def get_payout(engine: AsyncEngine, *, withdrawal_id: UUID) -> Payout:
    """The payout's current state (PENDING, PAID or REFUSED); PayoutNotFound if never received."""
    async with autocommit(engine) as conn:
        payout = await repository.get(conn, withdrawal_id=withdrawal_id)
    if payout is None:
        raise PayoutNotFound(f"no payout for withdrawal {withdrawal_id}")
    return payout


async def _claim(
    conn: AsyncConnection, orders: Sequence[Order], *, lease_s: float
) -> tuple[dict[UUID, Answer], list[Payout]]:
    """Step 1: the answers known before the bank call, and the payouts we now lease for it."""
    # The PENDING claims with their leases, committed as the INSERT returns: ours to pay.
    leased = await repository.insert_pending(conn, orders, lease_s=lease_s)
    earlier = await _existing(
        conn, [o.withdrawal_id for o in orders if o.withdrawal_id not in leased]
    )
    answers: dict[UUID, Answer] = {}
    unleased = []
    for order in orders:
        payout = leased.get(order.withdrawal_id) or earlier[order.withdrawal_id]
        if mismatch := _mismatch(payout, order):
            answers[order.withdrawal_id] = mismatch
        elif payout.status == PayoutStatus.PENDING and order.withdrawal_id not in leased:
            unleased.append(order.withdrawal_id)
        elif order.withdrawal_id not in leased:
            answers[order.withdrawal_id] = payout  # the first outcome, recorded earlier
    if unleased:
        # PENDING from an earlier request: take the leases nobody holds any more (a crash or
        # a bank failure left them), so those are paid now.
        taken = await repository.take_leases(conn, unleased, lease_s=lease_s)
        leased |= taken
        # The others: another request holds the lease and is calling the bank (or has just
        # recorded the outcome): answer what is stored now rather than call the bank twice.
        answers |= await _existing(conn, [i for i in unleased if i not in taken])
    return answers, list(leased.values())


async def _record(
    engine: AsyncEngine, leased: list[Payout], results: list[BankResult | BankUnavailable]
) -> dict[UUID, Answer]:
    """Step 3: the outcomes, committed as the UPDATE returns (a recorded refusal is committed
    before it is answered); the leases of the payouts the bank left unknown are given up."""
    outcomes = [
        Outcome(p.withdrawal_id, result.status, result.bank_reference, result.failure_code)
        for p, result in zip(leased, results, strict=True)
        if isinstance(result, BankResult)
    ]
    unavailable = [
        p for p, r in zip(leased, results, strict=True) if isinstance(r, BankUnavailable)
    ]
    answers: dict[UUID, Answer] = {}
    async with autocommit(engine) as conn:
        if outcomes:
            recorded = await repository.record_outcomes(conn, outcomes)
            # Nothing recorded for some: a duplicate that took over an expired lease was first.
            answers |= recorded | await _existing(
                conn, [o.withdrawal_id for o in outcomes if o.withdrawal_id not in recorded]
            )
            for outcome in outcomes:
                logger.info(
                    "payout %s %s", outcome.withdrawal_id, answers[outcome.withdrawal_id].status
                )
        if unavailable:
            logger.warning(
                "bank unavailable for payouts %s",
                ", ".join(str(p.withdrawal_id) for p in unavailable),
            )
            # The outcomes are unknown but nobody is calling the bank now: a retry may at once.
            await repository.give_up_leases(
                conn, [(p.withdrawal_id, p.lease_until) for p in unavailable if p.lease_until]
            )
    for payout in unavailable:
        answers[payout.withdrawal_id] = BankUnavailableError(
            "the bank did not answer; the payout is PENDING, send the same request again",
            extra={
                "withdrawal_id": str(payout.withdrawal_id),
                "payout_status": PayoutStatus.PENDING,
            },
        )
    return answers


async def _existing(conn: AsyncConnection, withdrawal_ids: list[UUID]) -> dict[UUID, Payout]:
    # Our INSERT or UPDATE changed nothing for these: another request claimed the payout (or
    # recorded its outcome) first, and committed before ours returned (a conflicting write
    # waits for the winner's commit). Reading them takes a separate statement: under READ
    # COMMITTED that gets a new snapshot, which includes the winner's commit.
    if not withdrawal_ids:
        return {}
    payouts = await repository.get_many(conn, withdrawal_ids)
    if len(payouts) != len(withdrawal_ids):  # pragma: no cover - payouts are never deleted
        raise RuntimeError(f"payouts {withdrawal_ids} were not changed but cannot be read")
    return payouts


def _mismatch(payout: Payout, order: Order) -> PayoutMismatch | None:
    # One withdrawal id is one order: a retry that changes it is a core bug, never a new payout.
    differs = [
        name
        for name, stored, asked in (
            ("merchant_id", payout.merchant_id, order.merchant_id),
            ("account_id", payout.account_id, order.account_id),
            ("amount", payout.amount, order.amount),
            ("account", payout.bank_account, order.bank_account),
        )
        if stored != asked
    ]
    if not differs:
        return None
    return PayoutMismatch(
        f"withdrawal {payout.withdrawal_id} was first received with a different "
        + ", ".join(differs),
        extra={"fields": differs},
    )
