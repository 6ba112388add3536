"""Who is calling: the bearer token names a user; roles and status come from the database."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from app.auth import repository
from app.auth.errors import AdminRequired, InvalidToken, MerchantRequired
from app.auth.tokens import TokenClaims, read_token
from app.errors import Unauthorized
from app.merchants.errors import MerchantNotApproved
from app.models import MerchantStatus

TOKEN_URL = "/api/v1/auth/token"
# auto_error=False: a missing token becomes our own problem+json 401, not FastAPI's.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


@dataclass(frozen=True)
class CallerUser:
    id: int
    is_admin: bool


@dataclass(frozen=True)
class CallerMerchant:
    id: int
    status: str


@dataclass(frozen=True)
class Caller:
    user: CallerUser
    merchant: CallerMerchant | None


def access_claims(request: Request, token: str | None) -> TokenClaims:
    """The claims of the request's bearer access token (no database involved)."""
    if not token:
        raise Unauthorized("a bearer access token is required")
    return read_token(request.app.state.settings, token, expected_type="access")


async def current_caller(
    request: Request,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> Caller:
    claims = access_claims(request, token)
    # One statement, its connection returned at once: nothing is held while the route runs
    # (e.g. the settlement call).
    found = await repository.get_identity(request.app.state.engine, user_id=claims.user_id)
    if found is None:
        raise InvalidToken("the token's user no longer exists")
    if found.token_version != claims.version:
        raise InvalidToken("the token was revoked (password change or suspension)")
    user = CallerUser(id=found.user_id, is_admin=found.is_admin)
    merchant = (
        None
        if found.merchant_id is None or found.merchant_status is None
        else CallerMerchant(id=found.merchant_id, status=found.merchant_status)
    )
    request.state.actor = f"merchant:{merchant.id}" if merchant else f"user:{user.id}"
    return Caller(user=user, merchant=merchant)


CurrentCaller = Annotated[Caller, Depends(current_caller)]


async def admin_user(caller: CurrentCaller) -> CallerUser:
    if not caller.user.is_admin:
        raise AdminRequired()
    return caller.user


AdminUser = Annotated[CallerUser, Depends(admin_user)]


@dataclass(frozen=True)
class MerchantCaller:
    user: CallerUser
    merchant: CallerMerchant


async def current_merchant(caller: CurrentCaller) -> MerchantCaller:
    if caller.merchant is None:
        raise MerchantRequired("this endpoint is for merchant accounts")
    return MerchantCaller(user=caller.user, merchant=caller.merchant)


CurrentMerchant = Annotated[MerchantCaller, Depends(current_merchant)]


async def approved_merchant(caller: CurrentMerchant) -> MerchantCaller:
    # Checked again under the credit line's lock when money moves; this is the early answer.
    if caller.merchant.status != MerchantStatus.APPROVED:
        raise MerchantNotApproved(f"merchant status is {caller.merchant.status}")
    return caller


ApprovedMerchant = Annotated[MerchantCaller, Depends(approved_merchant)]
