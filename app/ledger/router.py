"""The admin's view of the pool: /api/v1/admin/pool."""

from fastapi import APIRouter, Request, Response

from app.auth.deps import AdminUser
from app.db import SessionDep, money_transaction
from app.idempotency.service import key_parameter, require_key
from app.jsonbody import ExactJSONRoute
from app.ledger import service
from app.ledger.schemas import PoolSummaryOut, TopUpIn, TopUpOut

router = APIRouter(prefix="/api/v1/admin/pool", tags=["admin"], route_class=ExactJSONRoute)


_KEY_HEADER = key_parameter(required=False, description="optional; tops up once per key")
_TOP_UP_RESPONSES: dict[int | str, dict[str, str]] = {
    400: {"description": "IDEMPOTENCY_KEY_REQUIRED (blank) / IDEMPOTENCY_KEY_INVALID"},
    409: {"description": "TOPUP_REFERENCE_USED: the reference funded another top-up"},
    422: {
        "description": "VALIDATION_ERROR / INVALID_AMOUNT / IDEMPOTENCY_KEY_REUSED / "
        "POOL_LIMIT_EXCEEDED"
    },
}


@router.post(
    "/topup",
    response_model=TopUpOut,
    responses=_TOP_UP_RESPONSES,
    openapi_extra={"parameters": [_KEY_HEADER]},
)
async def top_up(
    body: TopUpIn, _admin: AdminUser, session: SessionDep, request: Request, response: Response
) -> TopUpOut:
    """Fund the pool from outside money (ledger FUNDING -> POOL), once per key or reference."""
    raw_key = request.headers.get("Idempotency-Key")
    key = None if raw_key is None else require_key(raw_key)
    async with money_transaction(session):
        result = await service.top_up_pool(
            session, amount=body.amount, key=key, reference=body.reference
        )
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return TopUpOut.model_validate(result)


@router.get("", response_model=PoolSummaryOut)
async def pool(_admin: AdminUser, session: SessionDep) -> PoolSummaryOut:
    """Available, in flight, paid out and funded, from the pool row and the ledger."""
    return PoolSummaryOut.model_validate(await service.pool_summary(session))
