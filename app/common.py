"""What both ASGI apps share: error handlers, middleware and the health endpoints."""

from fastapi import FastAPI

from app.config import Settings
from app.errors import install_error_handlers
from app.health.router import router as health_router
from app.middleware import BodyLimitMiddleware, RequestIdMiddleware


def install_common(app: FastAPI, settings: Settings) -> None:
    install_error_handlers(app)
    # Added last = outermost: the request id exists before anything else can fail.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.MAX_BODY_BYTES)
    app.add_middleware(RequestIdMiddleware)
    app.include_router(health_router)
