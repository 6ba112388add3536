"""Admin accounts: the bootstrap admin of `make run` and `python -m app create-admin`."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.passwords import hash_password
from app.models import User


async def ensure_admin(session: AsyncSession, *, username: str, password: str | None) -> bool:
    """Create the admin, or make an existing user an admin; True when a user was created.

    An existing user's password changes only when one is given, so the bootstrap is idempotent.
    """
    user = await session.scalar(select(User).where(User.username == username))
    if user is None:
        if password is None:
            raise ValueError("a password is required to create a new admin")
        session.add(User(username=username, password_hash=hash_password(password), is_admin=True))
        return True
    user.is_admin = True
    if password is not None:
        user.password_hash = hash_password(password)
    return False


async def admin_exists(session: AsyncSession, *, username: str) -> bool:
    return await session.scalar(select(User.id).where(User.username == username)) is not None
