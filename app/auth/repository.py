from dataclasses import dataclass
from typing import cast

import asyncpg
from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Merchant, User

_users = cast(Table, User.__table__)
_merchants = cast(Table, Merchant.__table__)

# Every authenticated request runs it: plain SQL on the statement pool (app.db).
_IDENTITY = (
    "SELECT u.id, u.is_admin, m.id, m.status FROM users u "
    "LEFT JOIN merchants m ON m.user_id = u.id WHERE u.id = $1"
)


@dataclass(frozen=True)
class Identity:
    """Who a token's user is right now: plain values, read on every authenticated request."""

    user_id: int
    is_admin: bool
    merchant_id: int | None
    merchant_status: str | None


async def get_user(session: AsyncSession, *, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def get_user_by_username(session: AsyncSession, *, username: str) -> User | None:
    return await session.scalar(select(User).where(User.username == username))


async def get_identity(db: asyncpg.Pool, *, user_id: int) -> Identity | None:
    """The user's role and, for merchants, their merchant id and status, in one Core query.

    Every request runs this, so it builds no ORM objects (see STYLE.md, "Hot path").
    """
    row = await db.fetchrow(_IDENTITY, user_id)
    return Identity(*row) if row else None
