"""The admin's view of stuck withdrawals: GET /api/v1/admin/withdrawals/stuck."""

from typing import Annotated

from fastapi import APIRouter, Query, Request

from app.auth.deps import AdminUser
from app.db import SessionDep
from app.operations import service
from app.operations.schemas import StuckWithdrawals

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


@router.get("/withdrawals/stuck", response_model=StuckWithdrawals)
async def list_stuck_withdrawals(
    _admin: AdminUser,
    session: SessionDep,
    request: Request,
    older_than_s: Annotated[
        int, Query(ge=0, le=10**9, description="open for longer than this many seconds")
    ] = 600,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> StuckWithdrawals:
    """QUEUED/PROCESSING withdrawals older than `older_than_s`, oldest first, each with what
    settlement knows of it now (PAID, REFUSED, NOT_RECEIVED or UNKNOWN). The reconciler (the
    worker's timer, or `python -m app reconcile`) finishes them; this only shows them."""
    return await service.stuck_withdrawals(
        session,
        http=request.app.state.http,
        settings=request.app.state.settings,
        older_than_s=older_than_s,
        limit=limit,
    )
