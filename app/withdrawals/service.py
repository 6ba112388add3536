"""A withdrawal: reserve (transaction 1), the settlement hop, finish (transaction 2).

Reserve always comes first and pays nothing; finishing happens exactly once, by whichever of
the request, a worker or the reconciler gets there first. Locks are taken in one order
everywhere: idempotency key, merchant credit line, then the pool row last.
"""

import logging
import uuid
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import asyncpg
from arq.connections import ArqRedis

from app.config import Settings
from app.errors import DATABASE_ERRORS, AppError, is_transient_database_error
from app.idempotency.repository import StoredKey
from app.idempotency.service import (
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    Replay,
    fingerprint,
    replay_or_raise,
)
from app.merchants.errors import MerchantNotApproved
from app.models import WithdrawalStatus
from app.money import format_amount
from app.observability.events import money_event
from app.withdrawals import settlement_client, statements
from app.withdrawals.errors import (
    AmountAboveMaximum,
    InsufficientMerchantCredit,
    InsufficientPool,
    SettlementRefused,
)
from app.withdrawals.queue import enqueue_payout
from app.withdrawals.repository import WithdrawalRow
from app.withdrawals.settlement_client import Outcome, SettlementAnswer
from app.withdrawals.settlement_http import HopClient

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


_POOL_SHORT = "the credit pool cannot cover this withdrawal right now"
# The refusals creditpool_reserve stores on the key, built once: they never vary by request.
_CREDIT_REFUSAL_BODY = InsufficientMerchantCredit().problem()
_POOL_REFUSAL_BODY = InsufficientPool(_POOL_SHORT).problem()


def pending_body(withdrawal_id: uuid.UUID, status: str) -> dict[str, Any]:
    return {"withdrawal_id": str(withdrawal_id), "status": status}


def answer_for(withdrawal: WithdrawalRow) -> Answer:
    """The answer a withdrawal's current state deserves."""
    if withdrawal.status == WithdrawalStatus.SUCCESS:
        return Answer(200, success_body(withdrawal))
    if withdrawal.status == WithdrawalStatus.FAILED:
        return Answer(422, _refused(withdrawal).problem())
    return Answer(202, pending_body(withdrawal.id, withdrawal.status))


async def reserve(
    db: asyncpg.Pool,
    *,
    merchant_id: int,
    key: str,
    request_hash: str,
    amount: Decimal,
    initial_status: WithdrawalStatus,
) -> WithdrawalRow | Replay | InsufficientMerchantCredit | InsufficientPool:
    """Transaction 1, one statement: claim the key, then reserve on the line and the pool.

    Refusals for insufficient credit or pool are returned instead of raised: they are final
    outcomes, already stored on the key when this returns.
    """
    withdrawal_id = uuid.uuid4()
    # The key stores the 202 in the same transaction, in both modes: until transaction 2 (or
    # after a crash before it) a replay learns the withdrawal id instead of "in use".
    pending = pending_body(withdrawal_id, initial_status)
    # Key, merchant line, writes, pool row last (alembic/versions/0003).
    result = await statements.reserve(
        db,
        merchant_id=merchant_id,
        key=key,
        request_hash=request_hash,
        amount=amount,
        status=initial_status,
        withdrawal_id=withdrawal_id,
        reserve_tx_id=uuid.uuid4(),
        pending_body=pending,
        # The function adds `detail` and `available_credit`, the headroom it saw under the lock.
        credit_refusal_body=_CREDIT_REFUSAL_BODY,
        pool_refusal_body=_POOL_REFUSAL_BODY,
    )
    if result.outcome == "KEY_TAKEN":
        stored = (
            None
            if result.stored_hash is None
            else StoredKey(result.stored_hash, result.stored_status, result.stored_body)
        )
        return replay_or_raise(stored, request_hash=request_hash)
    if result.outcome == "NOT_APPROVED":
        raise MerchantNotApproved("the merchant is not approved for withdrawals")
    if result.outcome == "INSUFFICIENT_CREDIT":
        assert result.stored_body is not None
        stored_body = result.stored_body
        return InsufficientMerchantCredit(
            stored_body["detail"], extra={"available_credit": stored_body["available_credit"]}
        )
    if result.outcome == "WITHDRAWAL_EXISTS":
        # The key's retention ended but a withdrawal still carries it: never a second one.
        return await _replay_withdrawal(db, merchant_id=merchant_id, key=key, amount=amount)
    if result.outcome == "INSUFFICIENT_POOL":
        # The reservation's writes were undone; the key already holds this final outcome.
        return InsufficientPool(_POOL_SHORT)
    if result.outcome != "RESERVED" or result.withdrawal is None:
        raise RuntimeError(f"creditpool_reserve() answered {result.outcome!r}")
    money_event("reserved", result.withdrawal)
    return result.withdrawal


async def _replay_withdrawal(
    db: asyncpg.Pool, *, merchant_id: int, key: str, amount: Decimal
) -> Replay:
    """A key past its retention: the withdrawal that carries it answers for it."""
    withdrawal = await statements.by_key(db, merchant_id=merchant_id, key=key)
    if withdrawal is None:  # pragma: no cover - the function saw it under the key's lock
        raise IdempotencyKeyInUse("the first request with this key has just ended; retry")
    if withdrawal.amount != amount:
        raise IdempotencyKeyReused(
            f"this key belongs to withdrawal {withdrawal.id} of another amount",
            extra={"withdrawal_id": str(withdrawal.id)},
        )
    answer = answer_for(withdrawal)
    return Replay(status=answer.status, body=answer.body)


async def apply_settlement_answer(
    db: asyncpg.Pool, *, withdrawal: WithdrawalRow, answer: SettlementAnswer
) -> Answer:
    """Transaction 2, one statement: record a definite outcome once, with its ledger entries.

    An unknown outcome changes nothing: the money stays reserved for the reconciler. The
    stored idempotent answer always follows the withdrawal's final state.
    """
    final_tx_id = uuid.uuid4()
    if answer.outcome == Outcome.PAID:
        final = replace(
            withdrawal,
            status=WithdrawalStatus.SUCCESS,
            final_tx_id=final_tx_id,
            bank_reference=answer.bank_reference,
        )
    elif answer.outcome == Outcome.REFUSED:
        final = replace(
            withdrawal,
            status=WithdrawalStatus.FAILED,
            final_tx_id=final_tx_id,
            failure_code=answer.failure_code or "REFUSED",
        )
    else:
        # Outcome unknown: the money stays reserved; the key already holds this 202.
        return answer_for(withdrawal)
    intended = answer_for(final)  # stored on the key in the same statement
    done = await statements.finish(
        db,
        withdrawal_id=withdrawal.id,
        status=WithdrawalStatus(final.status),
        final_tx_id=final_tx_id,
        bank_reference=final.bank_reference,
        failure_code=final.failure_code,
        response_status=intended.status,
        response_body=intended.body,
    )
    if not done.finished:
        # Someone else finished it first; tell the merchant what actually happened.
        return answer_for(done.withdrawal)
    money_event("settled" if answer.outcome == Outcome.PAID else "released", done.withdrawal)
    return intended


async def create_withdrawal(
    db: asyncpg.Pool,
    *,
    http: HopClient,
    arq: ArqRedis | None,
    settings: Settings,
    merchant_id: int,
    key: str,
    amount: Decimal,
    request_id: str | None = None,
) -> Answer:
    """Reserve, then pay now (sync) or queue the payout (async); or replay the key's answer.

    `db` is the statement pool (app.db.create_statement_pool): each step below is one
    statement and its own transaction, and no transaction or lock is held during the
    settlement call. Sync and async differ only in who makes that call: this request, or a
    worker.
    """
    if amount > settings.MAX_WITHDRAWAL_AMOUNT:
        # Refused before transaction 1: nothing is stored on the key.
        raise AmountAboveMaximum(
            f"a withdrawal may be at most {format_amount(settings.MAX_WITHDRAWAL_AMOUNT)}",
            extra={"max_amount": format_amount(settings.MAX_WITHDRAWAL_AMOUNT)},
        )
    queued = settings.ASYNC_SETTLEMENT
    request_hash = fingerprint({"amount": format_amount(amount)})
    reserved = await reserve(
        db,
        merchant_id=merchant_id,
        key=key,
        request_hash=request_hash,
        amount=amount,
        initial_status=WithdrawalStatus.QUEUED if queued else WithdrawalStatus.PROCESSING,
    )
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
        return await apply_settlement_answer(db, withdrawal=reserved, answer=answer)
    except (*DATABASE_ERRORS, OSError) as exc:
        if not is_transient_database_error(exc):
            raise
        # Reserved, maybe paid, not yet recorded: the reconciler records it (settlement knows
        # the outcome), so the merchant hears "processing", never an error.
        logger.warning("finishing %s deferred to the reconciler: %s", reserved.id, exc)
        return answer_for(reserved)
