from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Merchant, User


async def get_user(session: AsyncSession, *, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def get_user_by_username(session: AsyncSession, *, username: str) -> User | None:
    return await session.scalar(select(User).where(User.username == username))


async def get_merchant_of_user(session: AsyncSession, *, user_id: int) -> Merchant | None:
    return await session.scalar(select(Merchant).where(Merchant.user_id == user_id))
