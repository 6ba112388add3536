"""The per-merchant withdrawal rate limit, as a route dependency.

It runs after authentication and before the handler, so a refused request never reaches the
Idempotency-Key claim or the money: it stores nothing and moves nothing.

Redis down means no limit (fail open), counted in creditpool_ratelimit_unavailable_total and
logged: the limit protects fairness and capacity, not money. Every withdrawal still needs an
approved merchant, a fresh Idempotency-Key and credit headroom that PostgreSQL checks under a
row lock, so an unlimited minute cannot move a cent that the limit would have kept; failing
closed would instead turn a Redis restart into a payout outage.
"""

import logging
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from redis.exceptions import RedisError

from app.auth.deps import (
    access_claims,
    approved_merchant,
    current_caller,
    current_merchant,
    oauth2_scheme,
)
from app.auth.tokens import TokenHolder
from app.errors import AppError
from app.observability.metrics import RATE_LIMIT_REJECTIONS, RATE_LIMIT_UNAVAILABLE
from app.ratelimit.limiter import Decision, SlidingWindowLimiter

logger = logging.getLogger("app.ratelimit")

POLICY = "withdrawals"
# During an outage every request would log; one line per interval per process is enough.
UNAVAILABLE_LOG_INTERVAL_S = 10.0
_last_unavailable_log = -UNAVAILABLE_LOG_INTERVAL_S


class RateLimited(AppError):
    status, code, title = 429, "RATE_LIMITED", "Too many requests"


def rate_limit_headers(decision: Decision) -> dict[str, str]:
    """The IETF RateLimit-Policy / RateLimit fields (draft-ietf-httpapi-ratelimit-headers)."""
    return {
        "RateLimit-Policy": f'"{POLICY}";q={decision.limit};w={decision.window_s}',
        "RateLimit": f'"{POLICY}";r={decision.remaining};t={decision.reset_s}',
    }


def _limiter(request: Request) -> SlidingWindowLimiter:
    state = request.app.state
    if getattr(state, "rate_limiter", None) is None:
        state.rate_limiter = SlidingWindowLimiter(state.redis)
    limiter: SlidingWindowLimiter = state.rate_limiter
    return limiter


async def hit(
    request: Request, *, policy: str, subject: object, limit: int, window_s: int
) -> Decision | None:
    """Count one request of `subject` against `policy`; None when Redis is down (fail open)."""
    try:
        return await _limiter(request).hit(
            f"ratelimit:{policy}:{subject}", limit=limit, window_s=window_s
        )
    except RedisError as exc:
        note_unavailable(exc, policy=policy)
        return None


def note_unavailable(exc: RedisError, *, policy: str = POLICY) -> None:
    global _last_unavailable_log
    RATE_LIMIT_UNAVAILABLE.labels(limit=policy).inc()
    now = time.monotonic()
    if now - _last_unavailable_log >= UNAVAILABLE_LOG_INTERVAL_S:
        _last_unavailable_log = now
        logger.warning(
            "rate limit unavailable, letting %s through unlimited: %s",
            policy,
            type(exc).__name__,
            extra={"limit": policy},
        )


async def limit_withdrawals(request: Request, merchant_id: int) -> None:
    """RL_MAX_REQUESTS withdrawals per RL_WINDOW_SEC per merchant (0 = no limit)."""
    settings = request.app.state.settings
    if settings.RL_MAX_REQUESTS == 0:
        return
    decision = await hit(
        request,
        policy=POLICY,
        subject=merchant_id,
        limit=settings.RL_MAX_REQUESTS,
        window_s=settings.RL_WINDOW_SEC,
    )
    if decision is None:
        return
    # On every answer to this request, whatever the handler returns (see RequestIdMiddleware).
    request.state.response_headers = rate_limit_headers(decision)
    if not decision.allowed:
        RATE_LIMIT_REJECTIONS.labels(limit=POLICY).inc()
        raise RateLimited(
            f"at most {decision.limit} withdrawals per {decision.window_s} s; "
            f"retry in {decision.reset_s} s",
            headers={"Retry-After": str(decision.reset_s)},
        )


@dataclass(frozen=True)
class Withdrawer:
    merchant_id: int
    holder: TokenHolder  # checked in the reservation's transaction (app/withdrawals/reserve.py)


async def withdrawing_merchant(
    request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> Withdrawer:
    """The merchant a withdrawal is for, within its rate limit, without a database lookup.

    A merchant's access token names its merchant id (`mid`); whether the token is still valid
    (its version) and the merchant still approved is checked in transaction 1 of the request's
    batch, one statement for the whole batch instead of a lookup per request. A token without
    `mid` (an admin's, or one issued before it existed) takes the lookup of every other route.
    """
    claims = access_claims(request, token)
    if claims.merchant_id is None:
        caller = await current_merchant(await current_caller(request, token))
        merchant_id = (await approved_merchant(caller)).merchant.id
    else:
        merchant_id = claims.merchant_id
        request.state.actor = f"merchant:{merchant_id}"
    await limit_withdrawals(request, merchant_id)
    return Withdrawer(merchant_id, TokenHolder(claims.user_id, claims.version))


WithdrawingMerchant = Annotated[Withdrawer, Depends(withdrawing_merchant)]
