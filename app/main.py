"""The core API: merchant and admin REST endpoints (`uvicorn app.main:app`)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from app.audit.router import router as audit_router
from app.auth.router import router as auth_router
from app.common import install_common
from app.config import Settings, get_settings
from app.db import create_engine, create_sessionmaker
from app.health.router import database_check, redis_check
from app.ledger.router import router as pool_router
from app.merchants.router import admin_router as merchants_admin_router
from app.merchants.router import router as merchants_router
from app.redis import create_redis
from app.withdrawals.router import router as withdrawals_router


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.engine = create_engine(settings)
        app.state.sessionmaker = create_sessionmaker(app.state.engine)
        app.state.redis = create_redis(settings)
        app.state.readiness_checks = {"database": database_check, "redis": redis_check}
        # One pooled client for the settlement hop; its timeout bounds how long a merchant
        # waits before getting 202 PROCESSING.
        app.state.http = httpx.AsyncClient(timeout=settings.SETTLEMENT_TIMEOUT_S)
        try:
            yield
        finally:
            await app.state.http.aclose()
            await app.state.redis.aclose()
            await app.state.engine.dispose()

    app = FastAPI(
        title="Creditpool API",
        version="1.0.0",
        description="Merchant payouts from credit lines backed by one shared pool.",
        lifespan=lifespan,
    )
    install_common(app, settings)
    for router in (
        auth_router,
        merchants_router,
        merchants_admin_router,
        withdrawals_router,
        pool_router,
        audit_router,
    ):
        app.include_router(router)
    return app


app = create_app()
