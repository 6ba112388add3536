"""A withdrawal: reserve (transaction 1), the settlement hop, finish (transaction 2).

Each transaction is batched with whatever else this process is doing (reserve.py, finish.py).

Reserve always comes first and pays nothing; finishing happens exactly once, by whichever of
the request, a worker or the reconciler gets there first. Locks are taken in one order
everywhere: idempotency key, merchant credit line, then the pool row last.
"""

import logging
import uuid
from dataclasses import replace
from decimal import Decimal

from arq.connections import ArqRedis

from app.auth.tokens import TokenHolder
from app.batching import BatcherClosed
from app.config import Settings
from app.errors import (
    DATABASE_ERRORS,
    AppError,
    DatabaseBusy,
    OutcomeUnknown,
    is_transient_database_error,
)
from app.idempotency.service import Replay, fingerprint
from app.models import WithdrawalStatus
from app.money import format_amount
from app.observability.events import money_event
from app.withdrawals.answers import Answer, answer_for, pending_body, success_body
from app.withdrawals.decide import ReserveRequest
from app.withdrawals.errors import (
    AmountAboveMaximum,
    InsufficientMerchantCredit,
    InsufficientPool,
)
from app.withdrawals.finish import FinishRequest
from app.withdrawals.money_path import MoneyPath
from app.withdrawals.queue import enqueue_payout
from app.withdrawals.repository import WithdrawalRow
from app.withdrawals.settlement_client import Outcome, SettlementAnswer, Settler, SettleRequest

logger = logging.getLogger("app.withdrawals")


async def reserve(
    db: MoneyPath,
    *,
    merchant_id: int,
    key: str,
    request_hash: str,
    amount: Decimal,
    initial_status: WithdrawalStatus,
    holder: TokenHolder | None = None,
) -> WithdrawalRow | Replay | InsufficientMerchantCredit | InsufficientPool:
    """Transaction 1, in the next reserve batch: claim the key, then reserve on the line and
    the pool.

    Refusals for insufficient credit or pool are returned instead of raised: they are final
    outcomes, already stored on the key when this returns.
    """
    result = await db.reserver.submit(
        ReserveRequest(
            merchant_id=merchant_id,
            key=key,
            request_hash=request_hash,
            amount=amount,
            status=initial_status,
            withdrawal_id=uuid.uuid4(),
            reserve_tx_id=uuid.uuid4(),
            holder=holder,
        )
    )
    if isinstance(result, WithdrawalRow):
        money_event("reserved", result)
    return result


async def apply_settlement_answer(
    db: MoneyPath, *, withdrawal: WithdrawalRow, answer: SettlementAnswer
) -> Answer:
    """Transaction 2, in the next finish batch: record a definite outcome once, with its
    ledger entries.

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
    intended = answer_for(final)  # stored on the key in the same transaction
    done = await db.finisher.submit(
        FinishRequest(
            withdrawal_id=withdrawal.id,
            status=WithdrawalStatus(final.status),
            final_tx_id=final_tx_id,
            bank_reference=final.bank_reference,
            failure_code=final.failure_code,
            response_status=intended.status,
            response_body=intended.body,
        )
    )
    if not done.finished:
        # Someone else finished it first; tell the merchant what actually happened.
        return answer_for(done.withdrawal)
    money_event("settled" if answer.outcome == Outcome.PAID else "released", done.withdrawal)
    return intended


async def create_withdrawal(
    db: MoneyPath,
    *,
    settler: Settler,
    arq: ArqRedis | None,
    settings: Settings,
    merchant_id: int,
    key: str,
    amount: Decimal,
    holder: TokenHolder | None = None,
    request_id: str | None = None,
) -> Answer:
    """Reserve, then pay now (sync) or queue the payout (async); or replay the key's answer.

    `db` is the process's money path and `settler` its settle batcher: each step below joins
    the next batch of its kind (app/batching.py), and no transaction or lock is held during
    the settlement call. Sync and async differ only in who makes that call: this request's
    settle batch, or a worker.
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
        holder=holder,
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
    try:
        answer = await settler.submit(SettleRequest(reserved, request_id))
        return await apply_settlement_answer(db, withdrawal=reserved, answer=answer)
    except (*DATABASE_ERRORS, OSError, DatabaseBusy, OutcomeUnknown, BatcherClosed) as exc:
        # DatabaseBusy and OutcomeUnknown are the finish batch's transient failures;
        # BatcherClosed: shutdown closed the settle or finish batcher before this got there.
        if not isinstance(
            exc, DatabaseBusy | OutcomeUnknown | BatcherClosed
        ) and not is_transient_database_error(exc):
            raise
        # Reserved, maybe paid, not yet recorded: the reconciler records it (settlement knows
        # the outcome), so the merchant hears "processing", never an error.
        logger.warning("finishing %s deferred to the reconciler: %s", reserved.id, exc)
        return answer_for(reserved)


__all__ = ["Answer", "answer_for", "create_withdrawal", "pending_body", "reserve", "success_body"]
