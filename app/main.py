"""The core API: merchant and admin REST endpoints (`uvicorn app.main:app`)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.audit.router import router as audit_router
from app.auth.router import router as auth_router
from app.common import NO_OPENTELEMETRY, install_common, observability
from app.config import Settings, get_settings
from app.db import close_pools, create_engine, create_sessionmaker
from app.docs import install_docs
from app.gc_tuning import tune_gc
from app.health.router import database_check, redis_check
from app.ledger.router import router as pool_router
from app.merchants.router import admin_router as merchants_admin_router
from app.merchants.router import router as merchants_router
from app.observability.gauges import money_gauges
from app.operations.gauges import open_withdrawal_gauges
from app.operations.router import router as operations_router
from app.redis import create_arq, create_redis
from app.requestlog.router import router as requestlog_router
from app.withdrawals.money_path import create_money_path
from app.withdrawals.router import router as withdrawals_router
from app.withdrawals.settlement_client import create_http_client, create_settler


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # The api signs tokens: it refuses to start without SECRET_KEY outside dev/test.
    settings.secret_key  # noqa: B018

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.engine = create_engine(settings)
        app.state.sessionmaker = create_sessionmaker(app.state.engine)
        # The money path's batchers, on the same engine (one pool per process).
        app.state.money = create_money_path(app.state.engine, settings)
        app.state.redis = create_redis(settings)
        app.state.readiness_checks = {"database": database_check, "redis": redis_check}
        # Without Redis the api still takes withdrawals (rate limits fail open, queued payouts
        # wait for the worker's database sweep): taking it out of service would do more harm.
        app.state.optional_checks = frozenset({"redis"})
        # One pooled client for the settlement hop; its timeout bounds how long a merchant
        # waits before getting 202 PROCESSING.
        app.state.http = create_http_client(settings)
        # Sync mode's hop: concurrent requests' payouts go to settlement in one batch call.
        app.state.settler = create_settler(app.state.http, settings)
        # Lazy: a Redis outage must not stop the api; queued payouts wait for the sweeper.
        app.state.arq = create_arq(settings) if settings.ASYNC_SETTLEMENT else None
        try:
            async with observability(app):
                tune_gc()
                yield
        finally:
            await app.state.settler.aclose()  # drain: its members' calls need the http client
            await app.state.http.aclose()
            if app.state.arq is not None:
                await app.state.arq.aclose()
            await app.state.redis.aclose()
            await app.state.money.aclose()  # drain: every queued withdrawal gets its answer
            await close_pools(app.state.engine)

    app = FastAPI(
        title="Creditpool API",
        version="1.0.0",
        description="Merchant payouts from credit lines backed by one shared pool.",
        lifespan=lifespan,
        telemetry=NO_OPENTELEMETRY,
        docs_url=None,  # install_docs serves them without a CDN
        redoc_url=None,
    )
    install_common(
        app,
        settings,
        service="api",
        routers=[
            withdrawals_router,  # first: POST /api/v1/withdrawals is the hot route
            auth_router,
            merchants_router,
            merchants_admin_router,
            pool_router,
            audit_router,
            requestlog_router,
            operations_router,
        ],
        metric_probes=[money_gauges, open_withdrawal_gauges],
    )
    install_docs(app)  # after the API's routes, which FastAPI tries first
    return app


app = create_app()
