"""The merchant's own view (/api/v1/me) and the admin's merchant management."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from app.auth.deps import AdminUser, CurrentMerchant
from app.db import SessionDep, money_transaction
from app.jsonbody import ExactJSONRoute
from app.merchants import service
from app.merchants.schemas import ApproveIn, MeOut, MerchantOut, MerchantPage
from app.models import MerchantStatus
from app.pagination import Cursor, Limit

router = APIRouter(prefix="/api/v1", tags=["merchants"], route_class=ExactJSONRoute)
admin_router = APIRouter(prefix="/api/v1/admin", tags=["admin"], route_class=ExactJSONRoute)

# Below 2^53, where JSON numbers stay exact in every client (JavaScript included).
MerchantId = Annotated[int, Path(gt=0, le=2**53 - 1)]
Responses = dict[int | str, dict[str, Any]]
_NOT_FOUND: Responses = {404: {"description": "MERCHANT_NOT_FOUND"}}
_TRANSITION: Responses = {409: {"description": "INVALID_STATUS_TRANSITION"}}
_INVALID_CURSOR: Responses = {
    422: {"description": "VALIDATION_ERROR / INVALID_CURSOR: not a next_cursor this API gave"}
}


@router.get("/me", response_model=MeOut)
async def me(caller: CurrentMerchant, session: SessionDep) -> MeOut:
    """The calling merchant's account and credit line."""
    return MeOut.from_row(await service.get_merchant(session, merchant_id=caller.merchant.id))


@admin_router.post(
    "/approve",
    response_model=MerchantOut,
    responses={**_NOT_FOUND, 409: {"description": "CREDIT_LIMIT_BELOW_UTILIZED"}},
)
async def approve(body: ApproveIn, _admin: AdminUser, session: SessionDep) -> MerchantOut:
    """Approve a merchant with a credit limit, or change an approved merchant's limit.

    The limit can never go below what is utilized (409). A suspended merchant's limit changes
    but it stays suspended until reactivated.
    """
    async with money_transaction(session):
        await service.approve(session, merchant_id=body.merchant_id, credit_limit=body.credit_limit)
    return MerchantOut.from_row(await service.get_merchant(session, merchant_id=body.merchant_id))


@admin_router.get("/merchants", response_model=MerchantPage, responses=_INVALID_CURSOR)
async def list_merchants(
    _admin: AdminUser,
    session: SessionDep,
    status: Annotated[MerchantStatus | None, Query()] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> MerchantPage:
    """Merchants, newest first, optionally by status; follow `next_cursor` for more."""
    rows, next_cursor = await service.list_merchants(
        session, status=status, cursor=cursor, limit=limit
    )
    return MerchantPage(items=[MerchantOut.from_row(r) for r in rows], next_cursor=next_cursor)


@admin_router.get("/merchants/{merchant_id}", response_model=MerchantOut, responses=_NOT_FOUND)
async def get_merchant(
    merchant_id: MerchantId, _admin: AdminUser, session: SessionDep
) -> MerchantOut:
    return MerchantOut.from_row(await service.get_merchant(session, merchant_id=merchant_id))


@admin_router.post(
    "/merchants/{merchant_id}/suspend",
    response_model=MerchantOut,
    responses={**_NOT_FOUND, **_TRANSITION},
)
async def suspend(merchant_id: MerchantId, _admin: AdminUser, session: SessionDep) -> MerchantOut:
    """Block the merchant's withdrawals; its credit line and history stay."""
    await service.suspend(session, merchant_id=merchant_id)
    await session.commit()
    return MerchantOut.from_row(await service.get_merchant(session, merchant_id=merchant_id))


@admin_router.post(
    "/merchants/{merchant_id}/reactivate",
    response_model=MerchantOut,
    responses={**_NOT_FOUND, **_TRANSITION},
)
async def reactivate(
    merchant_id: MerchantId, _admin: AdminUser, session: SessionDep
) -> MerchantOut:
    await service.reactivate(session, merchant_id=merchant_id)
    await session.commit()
    return MerchantOut.from_row(await service.get_merchant(session, merchant_id=merchant_id))
