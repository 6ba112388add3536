"""The admin's view of the pool: /api/v1/admin/pool."""

from fastapi import APIRouter

from app.auth.deps import AdminUser
from app.db import SessionDep
from app.ledger import service
from app.ledger.schemas import PoolSummaryOut, TopUpIn, TopUpOut

router = APIRouter(prefix="/api/v1/admin/pool", tags=["admin"])


@router.post("/topup", response_model=TopUpOut)
async def top_up(body: TopUpIn, _admin: AdminUser, session: SessionDep) -> TopUpOut:
    """Fund the pool from outside money (ledger FUNDING -> POOL)."""
    async with session.begin():
        result = await service.top_up_pool(session, amount=body.amount)
    return TopUpOut.model_validate(result)


@router.get("", response_model=PoolSummaryOut)
async def pool(_admin: AdminUser, session: SessionDep) -> PoolSummaryOut:
    """Available, in flight, paid out and funded, from the pool row and the ledger."""
    return PoolSummaryOut.model_validate(await service.pool_summary(session))
