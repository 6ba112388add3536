from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import IdempotencyKey


async def delete_created_before(session: AsyncSession, *, cutoff: datetime) -> int:
    """Drop keys past their retention; only completed keys go, a claim in flight stays."""
    result = await session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.created_at < cutoff, IdempotencyKey.completed_at.is_not(None)
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
