"""Admin accounts: the bootstrap admin of `make run` and `python -m app create-admin`.

Registration is public, so a username alone proves nothing: an existing user becomes an admin
only when the operator asks for it (`--promote`), and never a merchant's user.
"""

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import repository
from app.auth.passwords import hash_password
from app.auth.service import set_password
from app.models import User


class AdminRefused(Exception):
    """The operator's request would create or promote the wrong account; nothing changed."""


async def create_admin(session: AsyncSession, *, username: str, password: str) -> None:
    """A new admin user; refused when the username is taken by anyone."""
    existing = await repository.get_user_by_username(session, username=username)
    if existing is not None:
        kind = "an admin" if existing.is_admin else "a user"
        raise AdminRefused(f"{kind} named {username!r} already exists; nothing changed")
    session.add(User(username=username, password_hash=hash_password(password), is_admin=True))
    await session.flush()


async def promote_to_admin(session: AsyncSession, *, username: str, password: str | None) -> None:
    """Make an existing user without a merchant account an admin (and set its password)."""
    user = await repository.get_user_by_username(session, username=username)
    if user is None:
        raise AdminRefused(f"no user named {username!r}; create the admin without --promote")
    if await repository.merchant_id_of(session, user_id=user.id) is not None:
        raise AdminRefused(
            f"{username!r} is a merchant's login (anyone can register one); "
            "it is never made an admin: choose another username"
        )
    user.is_admin = True
    if password is not None:
        await set_password(session, user=user, password=password)
    await session.flush()


async def admin_exists(session: AsyncSession, *, username: str) -> bool:
    user = await repository.get_user_by_username(session, username=username)
    return user is not None and user.is_admin
