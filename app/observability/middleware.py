"""Watch every request once: a request log row, a JSON access line and the HTTP metrics.

Pure ASGI and outside the body limit and the routes, so 401/404/413/422/429 answers are seen
like any other, and a request that crashes is recorded as the 500 it becomes.
"""

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability.metrics import HTTP_LATENCY, HTTP_REQUESTS, IDEMPOTENT_REPLAYS
from app.requestlog.buffer import RequestLogBuffer, RequestLogRow

logger = logging.getLogger("app.access")

UNMATCHED_ROUTE = "<unmatched>"  # one label for every unknown path, so scans stay cheap
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
CLIENT_CLOSED = 499  # the client went away before an answer (nginx's convention)


def _route(scope: Scope) -> str:
    return getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE


def _path(scope: Scope) -> str:
    # The path as sent, still percent-encoded: a decoded "%00" would be a NUL that PostgreSQL
    # text refuses, and the encoded form is what an operator can paste into a request.
    raw = scope.get("raw_path") or scope["path"].encode()
    return raw.decode("latin-1")[:512]


def _withdrawal_id(scope: Scope, state: dict[str, Any]) -> uuid.UUID | None:
    found = state.get("withdrawal_id") or scope.get("path_params", {}).get("withdrawal_id")
    if isinstance(found, uuid.UUID) or found is None:
        return found
    try:
        return uuid.UUID(str(found))
    except ValueError:
        return None


def _clip(value: Any, length: int) -> str | None:
    return None if value is None else str(value)[:length]


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, *, service: str, request_log: RequestLogBuffer) -> None:
        self.app = app
        self.service = service
        self.request_log = request_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        created_at, started = datetime.now(UTC), time.perf_counter()
        # Unless a response starts, the request failed: the server error handler answers 500.
        response: dict[str, Any] = {"status": 500, "replayed": False}

        async def watching_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                response["replayed"] = any(
                    name.lower() == b"idempotent-replayed" and value == b"true"
                    for name, value in message.get("headers", [])
                )
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        except asyncio.CancelledError:
            response["status"] = CLIENT_CLOSED
            raise
        finally:
            try:
                self._record(scope, created_at, time.perf_counter() - started, **response)
            except Exception:
                logger.exception("could not record a request")

    def _record(
        self, scope: Scope, created_at: datetime, duration_s: float, status: int, replayed: bool
    ) -> None:
        state = scope.get("state", {})
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        route = _route(scope)
        HTTP_REQUESTS.labels(self.service, method, route, str(status)).inc()
        HTTP_LATENCY.labels(self.service, method, route, str(status)).observe(duration_s)
        if replayed:
            IDEMPOTENT_REPLAYS.inc()
        client = scope.get("client")
        row = RequestLogRow(
            created_at=created_at,
            service=self.service,
            method=scope["method"][:8],
            path=_path(scope),
            status=status,
            duration_ms=round(duration_s * 1000, 3),
            actor=_clip(state.get("actor"), 80),
            request_id=_clip(state.get("request_id"), 128),
            client_addr=_clip(client[0], 64) if client else None,
            idempotency_key=_clip(state.get("idempotency_key"), 255),
            withdrawal_id=_withdrawal_id(scope, state),
        )
        self.request_log.add(row)
        logger.info(
            "%s %s %s",
            row.method,
            row.path,
            status,
            extra={
                "service": self.service,
                "method": row.method,
                "path": row.path,
                "route": route,
                "status": status,
                "duration_ms": row.duration_ms,
                "actor": row.actor,
                "client": row.client_addr,
                "idempotency_key": row.idempotency_key,
                "withdrawal_id": str(row.withdrawal_id) if row.withdrawal_id else None,
            },
        )
