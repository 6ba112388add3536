"""Liveness and readiness, mounted on both apps."""

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from sqlalchemy import text

from app.errors import ServiceUnavailable

router = APIRouter(tags=["ops"])

Check = Callable[[Request], Awaitable[object]]
CHECK_TIMEOUT_S = 2.0


async def database_check(request: Request) -> object:
    async with request.app.state.engine.connect() as conn:
        return await conn.scalar(text("SELECT 1"))


async def redis_check(request: Request) -> object:
    return await request.app.state.redis.ping()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and serving; says nothing about its dependencies."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "a required dependency is down"}})
async def readyz(request: Request) -> dict[str, object]:
    """Every required dependency answers within a short timeout; an optional one that does
    not (the api's Redis: the rate limit fails open, money never needs it) only degrades."""
    checks: dict[str, Check] = request.app.state.readiness_checks
    optional: frozenset[str] = getattr(request.app.state, "optional_checks", frozenset())
    results = await asyncio.gather(
        *(asyncio.wait_for(check(request), CHECK_TIMEOUT_S) for check in checks.values()),
        return_exceptions=True,
    )
    down = [
        name
        for name, result in zip(checks, results, strict=True)
        if isinstance(result, BaseException)
    ]
    required_down = [name for name in down if name not in optional]
    if required_down:
        raise ServiceUnavailable(
            f"not ready: {', '.join(required_down)} unreachable", extra={"down": required_down}
        )
    return {
        "status": "degraded" if down else "ready",
        "checks": {name: "down" if name in down else "ok" for name in checks},
    }
