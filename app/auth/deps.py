"""Who is calling: the bearer token names a user; roles and status come from the database."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from app.auth import repository
from app.auth.errors import AdminRequired, InvalidToken, MerchantRequired
from app.auth.tokens import read_token
from app.db import SessionDep
from app.errors import Unauthorized
from app.merchants.errors import MerchantNotApproved
from app.models import Merchant, MerchantStatus, User

TOKEN_URL = "/api/v1/auth/token"
# auto_error=False: a missing token becomes our own problem+json 401, not FastAPI's.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


@dataclass(frozen=True)
class Caller:
    user: User
    merchant: Merchant | None


async def current_caller(
    request: Request,
    session: SessionDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> Caller:
    if not token:
        raise Unauthorized("a bearer access token is required")
    user_id = read_token(request.app.state.settings, token, expected_type="access")
    found = await repository.get_user_and_merchant(session, user_id=user_id)
    # Release the connection now: the route opens its own transactions, and a request must not
    # sit idle in a transaction (e.g. across the settlement call) holding a pooled connection.
    await session.close()
    if found is None:
        raise InvalidToken("the token's user no longer exists")
    user, merchant = found
    request.state.actor = f"merchant:{merchant.id}" if merchant else f"user:{user.id}"
    return Caller(user=user, merchant=merchant)


CurrentCaller = Annotated[Caller, Depends(current_caller)]


async def admin_user(caller: CurrentCaller) -> User:
    if not caller.user.is_admin:
        raise AdminRequired()
    return caller.user


AdminUser = Annotated[User, Depends(admin_user)]


@dataclass(frozen=True)
class MerchantCaller:
    user: User
    merchant: Merchant


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
