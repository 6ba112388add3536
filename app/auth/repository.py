import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.models import Merchant, RefreshFamily, User

_users = cast(Table, User.__table__)
_merchants = cast(Table, Merchant.__table__)

# Every authenticated request runs it: one Core statement, no ORM objects.
_IDENTITY = select(
    _users.c.id.label("user_id"),
    _users.c.is_admin,
    _users.c.token_version,
    _merchants.c.id.label("merchant_id"),
    _merchants.c.status.label("merchant_status"),
).select_from(_users.outerjoin(_merchants, _merchants.c.user_id == _users.c.id))


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


async def merchant_id_of(session: AsyncSession, *, user_id: int) -> int | None:
    """The user's merchant id (None for an admin without one); it never changes."""
    found: int | None = await session.scalar(select(Merchant.id).where(Merchant.user_id == user_id))
    return found


async def get_identity(engine: AsyncEngine, *, user_id: int) -> Identity | None:
    """The user's role and, for merchants, their merchant id and status, in one Core query.

    Every request runs this, so it builds no ORM objects (see STYLE.md, "Hot path").
    """
    # Autocommit (same pool): one read needs no BEGIN or ROLLBACK round trip.
    async with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        row = (await conn.execute(_IDENTITY.where(_users.c.id == user_id))).first()
    return Identity(**row._mapping) if row else None


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
