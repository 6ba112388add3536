"""A sliding-window rate limiter in Redis: one script, one round trip per request.

Each key holds a sorted set of the accepted requests' times (Redis server time, so the api's
replicas agree on the clock). The script drops what has left the window, counts the rest,
records the request if there is room, and returns what the RateLimit headers need, so the
decision and the headers cost one EVALSHA. The `limits` library's moving window does the
same decision but needs a second call for the remaining quota on every allowed request.

A refused request is not recorded, so a client hammering while limited is back as soon as
its oldest accepted request leaves the window. At most `limit` requests are accepted in any
window of `window_s` seconds, exactly; memory is one entry per accepted request, bounded by
`limit` per key, and the key expires with its window.
"""

import math
import uuid
from dataclasses import dataclass

from redis.asyncio import Redis

_SLIDING_WINDOW = """
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < limit then
    redis.call('ZADD', KEYS[1], now, ARGV[3])
    redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
    count = count + 1
    allowed = 1
end
local reset = window
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if oldest[2] then
    reset = tonumber(oldest[2]) + window - now
end
return {allowed, limit - count, reset}
"""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    window_s: int
    remaining: int
    # Seconds until the oldest counted request leaves the window (one unit of quota returns).
    reset_s: int


class SlidingWindowLimiter:
    def __init__(self, redis: Redis) -> None:
        # redis-py runs the script by its SHA and loads it once per server on NOSCRIPT.
        self._script = redis.register_script(_SLIDING_WINDOW)

    async def hit(self, key: str, *, limit: int, window_s: int) -> Decision:
        """Count one request against `key`; raises RedisError when Redis does not answer."""
        window_us = window_s * 1_000_000
        # A unique member per request: two in the same microsecond must both count.
        allowed, remaining, reset_us = await self._script(
            keys=[key], args=[limit, window_us, uuid.uuid4().hex]
        )
        return Decision(
            allowed=bool(allowed),
            limit=limit,
            window_s=window_s,
            remaining=max(0, int(remaining)),
            reset_s=max(1, math.ceil(int(reset_us) / 1_000_000)),
        )
