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


@router.get("/readyz", responses={503: {"description": "a dependency is down"}})
async def readyz(request: Request) -> dict[str, object]:
    """Every dependency of this app answers within a short timeout."""
    checks: dict[str, Check] = request.app.state.readiness_checks
    results = await asyncio.gather(
        *(asyncio.wait_for(check(request), CHECK_TIMEOUT_S) for check in checks.values()),
        return_exceptions=True,
    )
    down = [
        name
        for name, result in zip(checks, results, strict=True)
        if isinstance(result, BaseException)
    ]
    if down:
        raise ServiceUnavailable(f"not ready: {', '.join(down)} unreachable", extra={"down": down})
    return {"status": "ready", "checks": {name: "ok" for name in checks}}
