"""Registration and login."""

from decimal import Decimal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import repository
from app.auth.errors import InvalidCredentials, PasswordTooShort, UsernameTaken
from app.auth.passwords import DUMMY_HASH, hash_password, verify_password
from app.config import Settings
from app.models import Merchant, MerchantStatus, User


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
    if len(password) < settings.PASSWORD_MIN_LENGTH:
        raise PasswordTooShort(
            f"password must be at least {settings.PASSWORD_MIN_LENGTH} characters"
        )
    user = User(username=username, password_hash=hash_password(password), is_admin=False)
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
    valid = verify_password(password, user.password_hash if user else DUMMY_HASH)
    if user is None or not valid:
        raise InvalidCredentials()
    return user
