"""Settlement's HTTP API; only the core calls it, with its internal token."""

from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response

from app.errors import AppError
from app.models.settlement import PayoutStatus
from app.settlement import service
from app.settlement.deps import EngineDep, require_internal_token
from app.settlement.errors import BatchTooLarge
from app.settlement.schemas import (
    PayoutError,
    PayoutOut,
    WithdrawBatchOut,
    WithdrawBatchRequest,
    WithdrawRequest,
)

router = APIRouter(
    prefix="/api/settlement",
    tags=["settlement"],
    dependencies=[Depends(require_internal_token)],
    responses={
        401: {"description": "INTERNAL_TOKEN_MISSING"},
        403: {"description": "INTERNAL_TOKEN_INVALID"},
    },
)


@router.post(
    "/withdraw",
    responses={
        202: {"description": "PENDING: another request for it is paying it; ask again later"},
        409: {"description": "PAYOUT_MISMATCH: same withdrawal_id, different order"},
        422: {"description": "VALIDATION_ERROR"},
        503: {"description": "BANK_UNAVAILABLE: outcome unknown, send again / DATABASE_BUSY"},
    },
)
async def withdraw(body: WithdrawRequest, request: Request, response: Response) -> PayoutOut:
    """Pay a withdrawal out exactly once; repeats answer the first outcome (PAID or REFUSED),
    or 202 PENDING while another request for it is in the bank call."""
    # The engine and the bank straight from app.state: every dependency costs FastAPI a resolve
    # pass on each request, and this is the route every withdrawal takes.
    state = request.app.state
    request.state.withdrawal_id = body.withdrawal_id  # for the request log, whatever the outcome
    payout = await service.withdraw(
        state.engine, bank=state.bank, order=body.order(), lease_s=state.settings.PAYOUT_LEASE_S
    )
    if payout.status == PayoutStatus.PENDING:
        response.status_code = 202
    return PayoutOut.of(payout)


@router.post(
    "/withdraw/batch",
    responses={
        200: {
            "description": "one result per order, in order: the payout (PAID / REFUSED / "
            "PENDING, as the single endpoint answers it) or an ERROR item (PAYOUT_MISMATCH, "
            "BANK_UNAVAILABLE) for that order only"
        },
        422: {
            "description": "VALIDATION_ERROR (no orders, a withdrawal_id twice, a bad order) / "
            "BATCH_TOO_LARGE (more than BATCH_MAX orders): nothing stored"
        },
        503: {"description": "DATABASE_BUSY: outcomes unknown, send the same batch again"},
    },
)
async def withdraw_batch(body: WithdrawBatchRequest, request: Request) -> WithdrawBatchOut:
    """Pay each order out exactly once, as the single endpoint would, in one set-based pass.

    The request log row has no withdrawal id: a batch has many."""
    state = request.app.state
    batch_max = state.settings.BATCH_MAX
    if len(body.orders) > batch_max:
        raise BatchTooLarge(
            f"a batch may hold at most {batch_max} orders", extra={"max_orders": batch_max}
        )
    answers = await service.withdraw_batch(
        state.engine,
        bank=state.bank,
        orders=[order.order() for order in body.orders],
        lease_s=state.settings.PAYOUT_LEASE_S,
    )
    return WithdrawBatchOut(
        results=[
            PayoutError(withdrawal_id=order.withdrawal_id, code=answer.code, detail=answer.detail)
            if isinstance(answer, AppError)
            else PayoutOut.of(answer)
            for order, answer in zip(body.orders, answers, strict=True)
        ]
    )


@router.get(
    "/withdraw/{withdrawal_id}",
    responses={404: {"description": "PAYOUT_NOT_FOUND: never received"}},
)
async def get_withdrawal(withdrawal_id: UUID, engine: EngineDep) -> PayoutOut:
    """A payout's state: PAID, REFUSED, or PENDING (received, no bank outcome yet; POST again)."""
    return PayoutOut.of(await service.get_payout(engine, withdrawal_id=withdrawal_id))
