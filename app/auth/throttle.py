"""Failed-login throttle: per username and client address, counted in Redis."""

import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.auth.errors import LoginThrottled
from app.config import Settings

logger = logging.getLogger("app.auth.throttle")


def _key(username: str, client: str) -> str:
    return f"login-failures:{client}:{username}"


async def check_allowed(redis: Redis, settings: Settings, *, username: str, client: str) -> None:
    """Refuse the attempt while this username+address has too many recent failures.

    Redis down means no throttle (logged): a login throttle guards guessing, not money, and
    locking every merchant out because Redis restarted is the worse failure.
    """
    try:
        failures = await redis.get(_key(username, client))
        if failures is not None and int(failures) >= settings.LOGIN_MAX_FAILURES:
            retry_after = max(1, await redis.ttl(_key(username, client)))
            raise LoginThrottled(
                f"too many failed logins; retry in {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )
    except RedisError as exc:
        logger.warning("login throttle unavailable: %s", type(exc).__name__)


async def record_failure(redis: Redis, settings: Settings, *, username: str, client: str) -> None:
    key = _key(username, client)
    try:
        async with redis.pipeline(transaction=True) as pipe:
            # The window starts at the first failure (EXPIRE NX needs Redis 7; this works on 6).
            pipe.set(key, 0, ex=settings.LOGIN_FAILURE_WINDOW_SEC, nx=True)
            pipe.incr(key)
            await pipe.execute()
    except RedisError as exc:
        logger.warning("login throttle unavailable: %s", type(exc).__name__)


async def clear_failures(redis: Redis, *, username: str, client: str) -> None:
    try:
        await redis.delete(_key(username, client))
    except RedisError as exc:
        logger.warning("login throttle unavailable: %s", type(exc).__name__)
