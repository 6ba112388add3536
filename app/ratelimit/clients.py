"""Per-client-address limits on the unauthenticated auth endpoints (login, registration).

The failed-login throttle (app.auth.throttle) stops guessing one username; this stops one
address from spraying many usernames (unknown ones included) or mass-registering accounts,
and with them a flood of deliberately slow argon2 hashes. Fails open like the withdrawal
limit (see app.ratelimit.deps): it guards capacity, not money.
"""

from collections.abc import Awaitable, Callable

from fastapi import Request

from app.observability.metrics import RATE_LIMIT_REJECTIONS
from app.ratelimit.deps import RateLimited, hit


def client_address(request: Request) -> str:
    # uvicorn puts the proxy-resolved address here when FORWARDED_ALLOW_IPS trusts the proxy.
    return request.client.host if request.client else "unknown"


def limit_per_client(policy: str) -> Callable[[Request], Awaitable[None]]:
    """A route dependency: AUTH_RL_MAX_REQUESTS per AUTH_RL_WINDOW_SEC per address (0 = off)."""

    async def limit(request: Request) -> None:
        settings = request.app.state.settings
        if settings.AUTH_RL_MAX_REQUESTS == 0:
            return
        decision = await hit(
            request,
            policy=policy,
            subject=client_address(request),
            limit=settings.AUTH_RL_MAX_REQUESTS,
            window_s=settings.AUTH_RL_WINDOW_SEC,
        )
        if decision is not None and not decision.allowed:
            RATE_LIMIT_REJECTIONS.labels(limit=policy).inc()
            raise RateLimited(
                f"at most {decision.limit} requests per {decision.window_s} s from one "
                f"address; retry in {decision.reset_s} s",
                headers={"Retry-After": str(decision.reset_s)},
            )

    return limit
