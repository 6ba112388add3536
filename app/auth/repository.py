from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Executor
from app.models import Merchant, User

_users = cast(Table, User.__table__)
_merchants = cast(Table, Merchant.__table__)

# Built once with a named parameter: every authenticated request runs it.
_IDENTITY = (
    select(_users.c.id, _users.c.is_admin, _merchants.c.id, _merchants.c.status)
    .select_from(_users)
    .outerjoin(_merchants, _merchants.c.user_id == _users.c.id)
    .where(_users.c.id == bindparam("user_id"))
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


async def get_identity(conn: Executor, *, user_id: int) -> Identity | None:
    """The user's role and, for merchants, their merchant id and status, in one Core query.

    Every request runs this, so it builds no ORM objects (see STYLE.md, "Hot path").
    """
    row = (await conn.execute(_IDENTITY, {"user_id": user_id})).first()
    return Identity(*row) if row else None
