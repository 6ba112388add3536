"""A withdrawal: reserve (transaction 1), the settlement hop, finish (transaction 2).

Reserve always comes first and pays nothing; finishing happens exactly once, by whichever of
the request, a worker or the reconciler gets there first. Locks are taken in one order
everywhere: idempotency key, merchant credit line, then the pool row last.
"""

import logging
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
from arq.connections import ArqRedis
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import AppError, is_transient_database_error
from app.idempotency import repository as idempotency_keys
from app.idempotency.service import IdempotencyKeyReused, Replay, claim_or_replay, fingerprint
from app.ledger import repository as ledger
from app.merchants.errors import MerchantNotApproved
from app.models import LedgerAccount, LedgerKind, MerchantStatus, WithdrawalStatus
from app.money import format_amount
from app.observability.events import money_event
from app.withdrawals import repository, settlement_client
from app.withdrawals.errors import (
    InsufficientMerchantCredit,
    InsufficientPool,
    SettlementRefused,
)
from app.withdrawals.queue import enqueue_payout
from app.withdrawals.repository import WithdrawalRow
from app.withdrawals.settlement_client import Outcome, SettlementAnswer

logger = logging.getLogger("app.withdrawals")


@dataclass(frozen=True)
class Answer:
    """What the merchant is told: an HTTP status and body, possibly replayed from a key."""

    status: int
    body: dict[str, Any]
    replayed: bool = False


def success_body(withdrawal: WithdrawalRow) -> dict[str, Any]:
    return {
        "withdrawal_id": str(withdrawal.id),
        "status": WithdrawalStatus.SUCCESS,
        "amount": format_amount(withdrawal.amount),
        "bank_reference": withdrawal.bank_reference,
        "tx_id": str(withdrawal.final_tx_id),
    }


def _refused(withdrawal: WithdrawalRow) -> SettlementRefused:
    return SettlementRefused(
        f"the bank refused the payout ({withdrawal.failure_code}); the credit was released",
        extra={
            "withdrawal_id": str(withdrawal.id),
            "withdrawal_status": WithdrawalStatus.FAILED,
            "failure_code": withdrawal.failure_code,
        },
    )


def answer_for(withdrawal: WithdrawalRow) -> Answer:
    """The answer a withdrawal's current state deserves."""
    if withdrawal.status == WithdrawalStatus.SUCCESS:
        return Answer(200, success_body(withdrawal))
    if withdrawal.status == WithdrawalStatus.FAILED:
        return Answer(422, _refused(withdrawal).problem())
    return Answer(202, {"withdrawal_id": str(withdrawal.id), "status": withdrawal.status})


async def reserve(
    session: AsyncSession,
    *,
    merchant_id: int,
    key: str,
    request_hash: str,
    amount: Decimal,
    initial_status: WithdrawalStatus,
) -> WithdrawalRow | Replay | InsufficientMerchantCredit:
    """Transaction 1's statements: claim the key, then reserve on the line and the pool.

    Returns the refusal for insufficient credit instead of raising it, because that outcome
    is stored on the key and must be committed; InsufficientPool is raised (the caller rolls
    back the whole reservation and stores the outcome separately).
    """
    replay = await claim_or_replay(
        session, merchant_id=merchant_id, key=key, request_hash=request_hash
    )
    if replay is not None:
        return replay
    # Lock 2: the merchant's line. Concurrent withdrawals of one merchant queue here.
    line = await repository.lock_credit_line(session, merchant_id=merchant_id)
    if line is None or line.status != MerchantStatus.APPROVED:
        raise MerchantNotApproved("the merchant is not approved for withdrawals")
    if line.available < amount:
        refusal = InsufficientMerchantCredit(
            f"available credit is {format_amount(line.available)}",
            extra={"available_credit": format_amount(line.available)},
        )
        await idempotency_keys.store_response(
            session, merchant_id=merchant_id, key=key, status=409, body=refusal.problem()
        )
        return refusal
    withdrawal_id, reserve_tx_id = uuid.uuid4(), uuid.uuid4()
    withdrawal = await repository.insert_withdrawal(
        session,
        id=withdrawal_id,
        merchant_id=merchant_id,
        account_id=line.account_id,
        amount=amount,
        bank_account=line.bank_account,
        status=initial_status,
        idempotency_key=key,
        reserve_tx_id=reserve_tx_id,
    )
    if withdrawal is None:
        # The key's retention ended but a withdrawal still carries it: never a second one.
        raise IdempotencyKeyReused("this key already belongs to an earlier withdrawal")
    await repository.change_utilized(session, merchant_id=merchant_id, delta=amount)
    await ledger.insert_transfer(
        session,
        tx_id=reserve_tx_id,
        kind=LedgerKind.RESERVE,
        debit_account=LedgerAccount.POOL,
        credit_account=LedgerAccount.IN_FLIGHT,
        amount=amount,
        withdrawal_id=withdrawal_id,
    )
    # Lock 3, last: the pool row, held from here to COMMIT only.
    if await ledger.take_from_pool(session, amount=amount) is None:
        raise InsufficientPool("the credit pool cannot cover this withdrawal right now")
    money_event(session, "reserved", withdrawal)  # logged and counted once this commits
    return withdrawal


async def apply_settlement_answer(
    session: AsyncSession, *, withdrawal: WithdrawalRow, answer: SettlementAnswer
) -> Answer:
    """Transaction 2's statements: record a definite outcome once, with its ledger entries.

    An unknown outcome changes nothing: the money stays reserved for the reconciler. The
    stored idempotent answer always follows the withdrawal's final state.
    """
    if answer.outcome == Outcome.PAID:
        finished = await repository.finish(
            session,
            withdrawal_id=withdrawal.id,
            status=WithdrawalStatus.SUCCESS,
            final_tx_id=uuid.uuid4(),
            bank_reference=answer.bank_reference,
        )
        if finished is not None:
            await ledger.insert_transfer(
                session,
                tx_id=_final_tx(finished),
                kind=LedgerKind.SETTLE,
                debit_account=LedgerAccount.IN_FLIGHT,
                credit_account=LedgerAccount.PAID_OUT,
                amount=finished.amount,
                withdrawal_id=finished.id,
            )
            money_event(session, "settled", finished)
    elif answer.outcome == Outcome.REFUSED:
        finished = await repository.finish(
            session,
            withdrawal_id=withdrawal.id,
            status=WithdrawalStatus.FAILED,
            final_tx_id=uuid.uuid4(),
            failure_code=answer.failure_code or "REFUSED",
        )
        if finished is not None:
            await _release(session, finished)
    else:
        # Outcome unknown: the money stays reserved and replays of the key now learn the
        # withdrawal id (until then they were told the first request is still running).
        pending = answer_for(withdrawal)
        await _store_answer(session, withdrawal, pending, only_if_open=True)
        return pending
    current = finished or await repository.get(session, withdrawal_id=withdrawal.id)
    assert current is not None
    result = answer_for(current)
    if finished is not None:
        await _store_answer(session, finished, result)
    return result


async def _store_answer(
    session: AsyncSession, withdrawal: WithdrawalRow, answer: Answer, *, only_if_open: bool = False
) -> None:
    await idempotency_keys.store_response(
        session,
        merchant_id=withdrawal.merchant_id,
        key=withdrawal.idempotency_key,
        status=answer.status,
        body=answer.body,
        withdrawal_id=withdrawal.id,
        only_if_open=only_if_open,
    )


def _final_tx(withdrawal: WithdrawalRow) -> uuid.UUID:
    assert withdrawal.final_tx_id is not None
    return withdrawal.final_tx_id


async def _release(session: AsyncSession, withdrawal: WithdrawalRow) -> None:
    """Give a refused withdrawal's money back: merchant line first, pool row last."""
    await repository.change_utilized(
        session, merchant_id=withdrawal.merchant_id, delta=-withdrawal.amount
    )
    await ledger.insert_transfer(
        session,
        tx_id=_final_tx(withdrawal),
        kind=LedgerKind.RELEASE,
        debit_account=LedgerAccount.IN_FLIGHT,
        credit_account=LedgerAccount.POOL,
        amount=withdrawal.amount,
        withdrawal_id=withdrawal.id,
    )
    await ledger.add_to_pool(session, amount=withdrawal.amount)
    money_event(session, "released", withdrawal)


async def create_withdrawal(
    session: AsyncSession,
    *,
    http: httpx.AsyncClient,
    arq: ArqRedis | None,
    settings: Settings,
    merchant_id: int,
    key: str,
    amount: Decimal,
    request_id: str | None = None,
) -> Answer:
    """Reserve, then pay now (sync) or queue the payout (async); or replay the key's answer.

    `session` must have no transaction open: each step below is its own short transaction,
    and no transaction or lock is held during the settlement call. Sync and async differ
    only in who makes that call: this request, or a worker.
    """
    queued = settings.ASYNC_SETTLEMENT
    request_hash = fingerprint({"amount": format_amount(amount)})
    try:
        async with session.begin():
            reserved = await reserve(
                session,
                merchant_id=merchant_id,
                key=key,
                request_hash=request_hash,
                amount=amount,
                initial_status=WithdrawalStatus.QUEUED if queued else WithdrawalStatus.PROCESSING,
            )
            if queued and isinstance(reserved, WithdrawalRow):
                # The request ends at 202; replays get it until the worker stores the outcome.
                await _store_answer(session, reserved, answer_for(reserved), only_if_open=True)
    except InsufficientPool as refusal:
        # The whole reservation rolled back; the key still keeps this final outcome.
        async with session.begin():
            await idempotency_keys.insert_completed(
                session,
                merchant_id=merchant_id,
                key=key,
                request_hash=request_hash,
                status=refusal.status,
                body=refusal.problem(),
            )
        raise
    if isinstance(reserved, Replay):
        return Answer(reserved.status, reserved.body, replayed=True)
    if isinstance(reserved, AppError):
        raise reserved
    if queued:
        assert arq is not None, "ASYNC_SETTLEMENT needs the arq pool"
        # Committed first: if this enqueue is lost, the QUEUED row is what the sweeper finds.
        await enqueue_payout(arq, reserved.id)
        return answer_for(reserved)
    answer = await settlement_client.pay(http, settings, reserved, request_id=request_id)
    try:
        async with session.begin():
            return await apply_settlement_answer(session, withdrawal=reserved, answer=answer)
    except SQLAlchemyError as exc:
        if not is_transient_database_error(exc):
            raise
        # Reserved, maybe paid, not yet recorded: the reconciler records it (settlement knows
        # the outcome), so the merchant hears "processing", never an error.
        logger.warning("finishing %s deferred to the reconciler: %s", reserved.id, exc)
        return answer_for(reserved)
