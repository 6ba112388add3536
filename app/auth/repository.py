from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Merchant, User


async def get_user(session: AsyncSession, *, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def get_user_by_username(session: AsyncSession, *, username: str) -> User | None:
    return await session.scalar(select(User).where(User.username == username))


async def get_user_and_merchant(
    session: AsyncSession, *, user_id: int
) -> tuple[User, Merchant | None] | None:
    """The user and, for merchants, their merchant row, in one query."""
    row = (
        await session.execute(
            select(User, Merchant)
            .outerjoin(Merchant, Merchant.user_id == User.id)
            .where(User.id == user_id)
        )
    ).first()
    return (row[0], row[1]) if row else None
