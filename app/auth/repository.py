import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

import asyncpg
from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Merchant, RefreshFamily, User

_users = cast(Table, User.__table__)
_merchants = cast(Table, Merchant.__table__)

# Every authenticated request runs it: plain SQL on the statement pool (app.db).
_IDENTITY = (
    "SELECT u.id, u.is_admin, u.token_version, m.id, m.status FROM users u "
    "LEFT JOIN merchants m ON m.user_id = u.id WHERE u.id = $1"
)


@dataclass(frozen=True)
class Identity:
    """Who a token's user is right now: plain values, read on every authenticated request."""

    user_id: int
    is_admin: bool
    token_version: int
    merchant_id: int | None
    merchant_status: str | None


async def get_user(session: AsyncSession, *, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def get_user_by_username(session: AsyncSession, *, username: str) -> User | None:
    return await session.scalar(select(User).where(User.username == username))


async def has_merchant(session: AsyncSession, *, user_id: int) -> bool:
    found = await session.scalar(select(Merchant.id).where(Merchant.user_id == user_id))
    return found is not None


async def get_identity(db: asyncpg.Pool, *, user_id: int) -> Identity | None:
    """The user's role and, for merchants, their merchant id and status, in one Core query.

    Every request runs this, so it builds no ORM objects (see STYLE.md, "Hot path").
    """
    row = await db.fetchrow(_IDENTITY, user_id)
    return Identity(*row) if row else None


async def bump_token_version(session: AsyncSession, *, user_id: int) -> None:
    """Void every token issued to the user so far (they carry the old version)."""
    await session.execute(
        update(User).where(User.id == user_id).values(token_version=User.token_version + 1)
    )


async def add_refresh_family(
    session: AsyncSession, *, family_id: uuid.UUID, user_id: int, current_jti: str
) -> None:
    session.add(RefreshFamily(id=family_id, user_id=user_id, current_jti=current_jti))
    await session.flush()


async def lock_refresh_family(
    session: AsyncSession, *, family_id: uuid.UUID
) -> RefreshFamily | None:
    # FOR UPDATE: two refreshes with the same token queue here, so only one can rotate it.
    return await session.scalar(
        select(RefreshFamily).where(RefreshFamily.id == family_id).with_for_update()
    )


def revoke_family(family: RefreshFamily) -> None:
    family.revoked_at = datetime.now(UTC)
