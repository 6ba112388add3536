from arq.connections import ArqRedis
from redis.asyncio import Redis

from app.config import Settings


def create_redis(settings: Settings) -> "Redis":
    # Short timeouts: Redis guards rate limits and queues, never money, so a slow Redis must
    # fail fast instead of holding a request.
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=2,
        socket_connect_timeout=2,
        health_check_interval=30,
    )


def create_arq(settings: Settings) -> ArqRedis:
    """The arq queue client; connects on first use, so an outage does not block start-up."""
    return ArqRedis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
