"""Merchant withdrawals: /api/v1/withdrawals."""

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from app.auth.deps import CurrentMerchant
from app.db import SessionDep
from app.errors import PROBLEM_JSON
from app.idempotency.service import key_parameter, require_key
from app.jsonbody import ExactJSONRoute
from app.models import WithdrawalStatus
from app.pagination import Cursor, Limit
from app.ratelimit.deps import WithdrawingMerchant
from app.withdrawals import listing, service
from app.withdrawals.schemas import WithdrawalIn, WithdrawalOut, WithdrawalPage

router = APIRouter(prefix="/api/v1/withdrawals", tags=["withdrawals"], route_class=ExactJSONRoute)

# Every 4xx/5xx is served as a Problem (app.openapi), which also adds the errors of the
# authentication dependencies (401, 403) and the body (400, 413).
_CREATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "paid: `{withdrawal_id, status: SUCCESS, amount, bank_reference, tx_id}`"},
    202: {"description": "accepted, outcome pending: `{withdrawal_id, status}`; poll GET"},
    400: {"description": "IDEMPOTENCY_KEY_REQUIRED / IDEMPOTENCY_KEY_INVALID"},
    403: {"description": "MERCHANT_NOT_APPROVED"},
    409: {
        "description": "INSUFFICIENT_MERCHANT_CREDIT / INSUFFICIENT_POOL / IDEMPOTENCY_KEY_IN_USE"
    },
    422: {
        "description": "VALIDATION_ERROR / AMOUNT_ABOVE_MAXIMUM / IDEMPOTENCY_KEY_REUSED / "
        "SETTLEMENT_REFUSED"
    },
    429: {"description": "RATE_LIMITED: see Retry-After and the RateLimit headers"},
    503: {
        "description": "DATABASE_BUSY (nothing changed) / OUTCOME_UNKNOWN (retry with the "
        "same Idempotency-Key) / SHUTTING_DOWN (this process is stopping; nothing changed)"
    },
}
_KEY_HEADER = key_parameter(required=True, description="unique per withdrawal")
_LIST_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"description": "VALIDATION_ERROR / INVALID_CURSOR: not a next_cursor this API gave"}
}


def _out(row: Any) -> WithdrawalOut:
    return WithdrawalOut(
        withdrawal_id=row.id,
        status=row.status,
        amount=row.amount,
        bank_reference=row.bank_reference,
        failure_code=row.failure_code,
        tx_id=row.final_tx_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


# The rate limit runs before the handler: a refused request claims no key and moves nothing.
@router.post("", responses=_CREATE_RESPONSES, openapi_extra={"parameters": [_KEY_HEADER]})
async def create_withdrawal(
    body: WithdrawalIn, caller: WithdrawingMerchant, request: Request
) -> JSONResponse:
    """Withdraw from the credit line to the merchant's bank account, exactly once per key."""
    key = require_key(request.headers.get("Idempotency-Key"))
    request.state.idempotency_key = key
    answer = await service.create_withdrawal(
        request.app.state.money,
        settler=request.app.state.settler,
        arq=request.app.state.arq,
        settings=request.app.state.settings,
        merchant_id=caller.merchant_id,
        holder=caller.holder,
        key=key,
        amount=body.amount,
        request_id=getattr(request.state, "request_id", None),
    )
    request.state.withdrawal_id = answer.body.get("withdrawal_id")  # for the request log
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    if answer.status < 400:
        return JSONResponse(answer.body, status_code=answer.status, headers=headers)
    return JSONResponse(
        _with_request_fields(answer.body, request),
        status_code=answer.status,
        headers=headers,
        media_type=PROBLEM_JSON,
    )


def _with_request_fields(problem: dict[str, Any], request: Request) -> dict[str, Any]:
    """A stored (or about to be stored) problem with this request's own fields, as
    app.errors.problem_response adds them to every problem: the key never stores them, so a
    replay differs from the first answer only there."""
    fields = {"instance": request.url.path}
    if request_id := getattr(request.state, "request_id", None):
        fields["request_id"] = request_id
    return problem | fields


@router.get("", response_model=WithdrawalPage, responses=_LIST_RESPONSES)
async def list_withdrawals(
    caller: CurrentMerchant,
    session: SessionDep,
    status: Annotated[WithdrawalStatus | None, Query()] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> WithdrawalPage:
    """Your withdrawals, newest first; follow `next_cursor` for older ones."""
    rows, next_cursor = await listing.list_withdrawals(
        session, merchant_id=caller.merchant.id, status=status, cursor=cursor, limit=limit
    )
    return WithdrawalPage(items=[_out(row) for row in rows], next_cursor=next_cursor)


@router.get(
    "/{withdrawal_id}",
    response_model=WithdrawalOut,
    responses={404: {"description": "WITHDRAWAL_NOT_FOUND: none of yours has this id"}},
)
async def get_withdrawal(
    withdrawal_id: UUID, caller: CurrentMerchant, session: SessionDep
) -> WithdrawalOut:
    """One of your withdrawals (404 for any other id)."""
    return _out(
        await listing.get_withdrawal(
            session, merchant_id=caller.merchant.id, withdrawal_id=withdrawal_id
        )
    )
