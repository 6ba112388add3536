"""The admin's view of the pool: /api/v1/admin/pool."""

from typing import Annotated

from fastapi import APIRouter, Header, Response

from app.auth.deps import AdminUser
from app.db import SessionDep, money_transaction
from app.idempotency.service import require_key
from app.jsonbody import ExactJSONRoute
from app.ledger import service
from app.ledger.schemas import PoolSummaryOut, TopUpIn, TopUpOut

router = APIRouter(prefix="/api/v1/admin/pool", tags=["admin"], route_class=ExactJSONRoute)


@router.post("/topup", response_model=TopUpOut)
async def top_up(
    body: TopUpIn,
    _admin: AdminUser,
    session: SessionDep,
    response: Response,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", description="optional; tops up once per key")
    ] = None,
) -> TopUpOut:
    """Fund the pool from outside money (ledger FUNDING -> POOL), once per key or reference."""
    key = None if idempotency_key is None else require_key(idempotency_key)
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
