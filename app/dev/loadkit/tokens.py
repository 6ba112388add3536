"""Pre-generated access tokens for m1..mN in a Redis list (the Locust preload step)."""

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.tokens import issue_token
from app.config import Settings


async def push_tokens(
    session: AsyncSession, redis: Redis, settings: Settings, *, count: int, key: str
) -> int:
    """Replace the list at `key` with fresh access tokens for m1..m<count>, in that order."""
    rows = await session.execute(
        text(
            "SELECT u.id, u.token_version, m.id FROM generate_series(1, CAST(:count AS integer)) g "
            "JOIN users u ON u.username = 'm' || g JOIN merchants m ON m.user_id = u.id ORDER BY g"
        ),
        {"count": count},
    )
    tokens = [
        issue_token(
            settings,
            user_id=user_id,
            version=version,
            token_type="access",
            merchant_id=merchant_id,
        ).token
        for user_id, version, merchant_id in rows
    ]
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(key)
        for start in range(0, len(tokens), 1000):
            pipe.rpush(key, *tokens[start : start + 1000])
        await pipe.execute()
    return len(tokens)
