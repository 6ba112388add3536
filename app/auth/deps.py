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
from app.models import Merchant, User

TOKEN_URL = "/api/v1/auth/token"
# auto_error=False: a missing token becomes our own problem+json 401, not FastAPI's.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


async def current_user(
    request: Request,
    session: SessionDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> User:
    if not token:
        raise Unauthorized("a bearer access token is required")
    user_id = read_token(request.app.state.settings, token, expected_type="access")
    user = await repository.get_user(session, user_id=user_id)
    if user is None:
        raise InvalidToken("the token's user no longer exists")
    request.state.actor = f"user:{user.id}"
    return user


CurrentUser = Annotated[User, Depends(current_user)]


async def admin_user(user: CurrentUser) -> User:
    if not user.is_admin:
        raise AdminRequired()
    return user


AdminUser = Annotated[User, Depends(admin_user)]


@dataclass(frozen=True)
class MerchantCaller:
    user: User
    merchant: Merchant


async def current_merchant(user: CurrentUser, session: SessionDep) -> MerchantCaller:
    merchant = await repository.get_merchant_of_user(session, user_id=user.id)
    if merchant is None:
        raise MerchantRequired("this endpoint is for merchant accounts")
    return MerchantCaller(user=user, merchant=merchant)


CurrentMerchant = Annotated[MerchantCaller, Depends(current_merchant)]
