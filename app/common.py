"""What both ASGI apps share: error handlers, middleware, health, metrics and the request log."""

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import cast

from fastapi import APIRouter, FastAPI, Request
from fastapi.telemetry import TelemetryConfig
from starlette.responses import Response

from app.config import Settings
from app.errors import install_error_handlers
from app.health.router import router as health_router
from app.middleware import BodyLimitMiddleware, RequestIdMiddleware
from app.observability.gauges import Probe
from app.observability.logging import configure_logging
from app.observability.middleware import ObservabilityMiddleware
from app.observability.router import router as metrics_router
from app.openapi import install_openapi
from app.requestlog.buffer import RequestLogBuffer, request_log_writer

ServerErrorHandler = Callable[[Request, Exception], Awaitable[Response]]

# FastAPI's built-in OpenTelemetry looks for a configured provider on every request (and finds
# none); this product's metrics are Prometheus (/metrics) and its logs JSON lines on stdout.
NO_OPENTELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def install_common(
    app: FastAPI,
    settings: Settings,
    *,
    service: str = "api",
    routers: Sequence[APIRouter] = (),
    metric_probes: Sequence[Probe] = (),
) -> None:
    """`service` names the app in the request log and the metrics ("api", "settlement").

    `routers` are the app's own, hottest first: FastAPI tries included routers in order and
    every route of each one before the next, so the money route should not wait behind the
    others (health and metrics go last).
    """
    install_error_handlers(app)
    _stamp_request_id_on_server_errors(app)
    app.state.request_log = RequestLogBuffer(
        service=service,
        max_rows=settings.REQUEST_LOG_BUFFER_ROWS,
        batch_rows=settings.REQUEST_LOG_BATCH_ROWS,
    )
    app.state.metric_probes = list(metric_probes)
    # Added last = outermost: the request id exists before anything else can fail, and the
    # observer sees every answer, the body limit's 413 included.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.MAX_BODY_BYTES)
    app.add_middleware(ObservabilityMiddleware, service=service, request_log=app.state.request_log)
    app.add_middleware(RequestIdMiddleware)
    for router in (*routers, health_router, metrics_router):
        app.include_router(router)
    install_openapi(app, settings)


@asynccontextmanager
async def observability(app: FastAPI) -> AsyncIterator[None]:
    """Both apps' lifespans serve inside this: JSON logs, and the request log's batch writer
    (needs app.state.engine; drains the buffer before the engine is disposed)."""
    settings: Settings = app.state.settings
    configure_logging(settings.LOG_LEVEL)
    async with request_log_writer(
        app.state.request_log, app.state.engine, interval_s=settings.REQUEST_LOG_FLUSH_INTERVAL_S
    ):
        yield


def _stamp_request_id_on_server_errors(app: FastAPI) -> None:
    # Starlette sends the answer to an unhandled error from its outermost layer, outside
    # RequestIdMiddleware, so the 500 would lack X-Request-ID unless its handler adds it.
    handle = cast(ServerErrorHandler, app.exception_handlers[Exception])  # ours is async

    async def with_request_id(request: Request, exc: Exception) -> Response:
        response: Response = await handle(request, exc)
        request_id = getattr(request.state, "request_id", None)
        if request_id:
            response.headers["X-Request-ID"] = request_id
        return response

    app.add_exception_handler(Exception, with_request_id)
