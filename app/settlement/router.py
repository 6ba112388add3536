"""Settlement's HTTP API; only the core calls it, with its internal token."""

from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response

from app.models.settlement import PayoutStatus
from app.settlement import service
from app.settlement.deps import EngineDep, require_internal_token
from app.settlement.schemas import PayoutOut, WithdrawRequest

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
        state.engine,
        bank=state.bank,
        withdrawal_id=body.withdrawal_id,
        merchant_id=body.merchant_id,
        account_id=body.account_id,
        amount=body.amount,
        bank_account=body.account,
        lease_s=state.settings.PAYOUT_LEASE_S,
    )
    if payout.status == PayoutStatus.PENDING:
        response.status_code = 202
    return PayoutOut.of(payout)


@router.get(
    "/withdraw/{withdrawal_id}",
    responses={404: {"description": "PAYOUT_NOT_FOUND: never received"}},
)
async def get_withdrawal(withdrawal_id: UUID, engine: EngineDep) -> PayoutOut:
    """A payout's state: PAID, REFUSED, or PENDING (received, no bank outcome yet; POST again)."""
    return PayoutOut.of(await service.get_payout(engine, withdrawal_id=withdrawal_id))
