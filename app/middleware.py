"""Pure ASGI middleware shared by both apps: request ids and the request body limit."""

import re
import uuid

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import problem_response
from app.observability.logging import current_request_id

REQUEST_ID_HEADER = b"x-request-id"
_SANE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    """Accept a sane X-Request-ID or make one; expose it to handlers and logs, echo it back.

    It also adds the headers a dependency left in `request.state.response_headers` (the
    RateLimit fields): they belong on every answer, including error responses and responses
    that a handler builds itself.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(REQUEST_ID_HEADER, b"")
        request_id = incoming.decode() if _SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = state.get("response_headers") or {}
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER, request_id.encode()),
                    *((name.lower().encode(), value.encode()) for name, value in extra.items()),
                ]
            await send(message)

        token = current_request_id.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            current_request_id.reset(token)


class BodyLimitMiddleware:
    """Refuse bodies over `max_bytes`, whether announced by Content-Length or streamed."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = f"request bodies are limited to {self.max_bytes} bytes"
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            response = problem_response(
                None,
                status=413,
                code="PAYLOAD_TOO_LARGE",
                title="Payload too large",
                detail=detail,
                request_id=scope.get("state", {}).get("request_id"),
            )
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI lets HTTPException out of body parsing; the error handler turns
                    # it into problem+json.
                    raise HTTPException(413, detail)
            return message

        await self.app(scope, limited_receive, send)
