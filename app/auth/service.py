"""Registration, login and refresh-token rotation."""

import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import repository
from app.auth.errors import (
    InvalidCredentials,
    InvalidToken,
    PasswordTooShort,
    RefreshTokenReused,
    UsernameTaken,
)
from app.auth.passwords import DUMMY_HASH, hash_password_off_loop, verify_password_off_loop
from app.auth.tokens import IssuedToken, issue_token, read_token
from app.config import Settings
from app.models import Merchant, MerchantStatus, User


@dataclass(frozen=True)
class TokenPair:
    access: IssuedToken
    refresh: IssuedToken


async def register_merchant(
    session: AsyncSession,
    settings: Settings,
    *,
    username: str,
    password: str,
    requested_credit: Decimal,
    bank_account: str,
) -> Merchant:
    """A new merchant awaiting approval: no wallet account and no credit line yet."""
    if len(password) < settings.password_min_length:
        raise PasswordTooShort(
            f"password must be at least {settings.password_min_length} characters"
        )
    password_hash = await hash_password_off_loop(password)
    user = User(username=username, password_hash=password_hash, is_admin=False)
    merchant = Merchant(
        status=MerchantStatus.PENDING_APPROVAL,
        bank_account=bank_account,
        requested_credit=requested_credit,
    )
    try:
        # A savepoint: the unique index decides a race between two registrations.
        async with session.begin_nested():
            session.add(user)
            await session.flush()
            merchant.user_id = user.id
            session.add(merchant)
            await session.flush()
    except IntegrityError:
        raise UsernameTaken(f"username {username!r} is taken") from None
    return merchant


async def authenticate(session: AsyncSession, *, username: str, password: str) -> User:
    """The user with these credentials; a wrong password and an unknown user fail alike."""
    user = await repository.get_user_by_username(session, username=username)
    # Verify against a dummy hash for unknown users so both cases cost the same time.
    valid = await verify_password_off_loop(password, user.password_hash if user else DUMMY_HASH)
    if user is None or not valid:
        raise InvalidCredentials()
    return user


def _pair(
    settings: Settings, *, user: User, merchant_id: int | None, family: uuid.UUID
) -> TokenPair:
    version = user.token_version
    return TokenPair(
        access=issue_token(
            settings,
            user_id=user.id,
            version=version,
            token_type="access",
            merchant_id=merchant_id,
        ),
        refresh=issue_token(
            settings, user_id=user.id, version=version, token_type="refresh", family=family
        ),
    )


async def start_session(session: AsyncSession, settings: Settings, *, user: User) -> TokenPair:
    """Tokens for a login: the refresh token starts a new family (see RefreshFamily)."""
    family = uuid.uuid4()
    merchant_id = await repository.merchant_id_of(session, user_id=user.id)
    tokens = _pair(settings, user=user, merchant_id=merchant_id, family=family)
    await repository.add_refresh_family(
        session, family_id=family, user_id=user.id, current_jti=tokens.refresh.jti
    )
    return tokens


async def rotate_refresh_token(
    session: AsyncSession, settings: Settings, *, token: str
) -> TokenPair:
    """New tokens for the family's newest refresh token, which stops working.

    An older one of the family is a reused (so stolen) token: RefreshTokenReused, with the
    family revoked in this session, which the caller commits although the request fails.
    """
    claims = read_token(settings, token, expected_type="refresh")
    assert claims.family is not None  # read_token requires it of refresh tokens
    family = await repository.lock_refresh_family(session, family_id=claims.family)
    if family is None or family.user_id != claims.user_id or family.revoked_at is not None:
        raise InvalidToken("the refresh token was revoked")
    if family.current_jti != claims.jti:
        repository.revoke_family(family)
        raise RefreshTokenReused()
    user = await repository.get_user(session, user_id=claims.user_id)
    if user is None or user.token_version != claims.version:
        raise InvalidToken("the refresh token was revoked")
    merchant_id = await repository.merchant_id_of(session, user_id=user.id)
    tokens = _pair(settings, user=user, merchant_id=merchant_id, family=family.id)
    family.current_jti = tokens.refresh.jti
    await session.flush()
    return tokens


async def set_password(session: AsyncSession, *, user: User, password: str) -> None:
    """A new password; every token issued before it stops working."""
    user.password_hash = await hash_password_off_loop(password)
    await session.flush()
    await revoke_tokens(session, user_id=user.id)


async def revoke_tokens(session: AsyncSession, *, user_id: int) -> None:
    """Void the user's access and refresh tokens (password change, suspension)."""
    await repository.bump_token_version(session, user_id=user_id)
