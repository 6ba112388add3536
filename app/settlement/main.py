"""The settlement service: pays out to banks; a separate ASGI process on port 9000.

It shares the codebase (db, errors) but never imports the core app and never touches the
core's tables.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.common import NO_OPENTELEMETRY, install_common, observability
from app.config import Settings, get_settings
from app.db import close_pools, create_engine
from app.docs import install_docs
from app.gc_tuning import tune_gc
from app.health.router import database_check
from app.settlement.bank import SimulatedBank
from app.settlement.router import router as settlement_router


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        # One engine for everything (ARCHITECTURE section 1): the payout steps (Core
        # statements on its connections, no sessions), the request log and the health check.
        app.state.engine = create_engine(settings)
        # Settlement keeps no state in Redis, so only its database decides readiness.
        app.state.readiness_checks = {"database": database_check}
        # The bank adapter: anything meeting app.settlement.bank.Bank plugs in here. Only the
        # simulated bank exists so far; it keeps its transfers in this database.
        app.state.bank = SimulatedBank(
            app.state.engine,
            latency_ms=settings.BANK_LATENCY_MS,
            failure_rate=settings.BANK_FAILURE_RATE,
        )
        try:
            async with observability(app):
                tune_gc()
                yield
        finally:
            await close_pools(app.state.engine)

    app = FastAPI(
        title="Creditpool settlement",
        version="1.0.0",
        lifespan=lifespan,
        telemetry=NO_OPENTELEMETRY,
        # An internal service: its schema and docs only in dev/test, never in production.
        openapi_url="/openapi.json" if settings.is_dev else None,
        docs_url=None,
        redoc_url=None,
    )
    install_common(app, settings, service="settlement", routers=[settlement_router])
    if settings.is_dev:
        install_docs(app)
    return app


app = create_app()
