"""Domain errors and the one place that turns any error into RFC 9457 problem+json."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

logger = logging.getLogger("app.errors")

PROBLEM_JSON = "application/problem+json"

# Codes for framework-level HTTP errors that no domain error raised.
_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "NOT_AUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMITED",
    503: "SERVICE_UNAVAILABLE",
}


class AppError(Exception):
    """Base of every domain error: it knows its HTTP status, stable code and title."""

    status: int = 400
    code: str = "BAD_REQUEST"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = headers
        self.extra = extra or {}

    def problem(self) -> dict[str, Any]:
        return problem_body(
            status=self.status, code=self.code, title=self.title, detail=self.detail, **self.extra
        )


class NotFound(AppError):
    status, code, title = 404, "NOT_FOUND", "Not found"


class Conflict(AppError):
    status, code, title = 409, "CONFLICT", "Conflict"


class Unauthorized(AppError):
    status, code, title = 401, "NOT_AUTHENTICATED", "Not authenticated"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kwargs)


class Forbidden(AppError):
    status, code, title = 403, "FORBIDDEN", "Forbidden"


class ServiceUnavailable(AppError):
    status, code, title = 503, "SERVICE_UNAVAILABLE", "Service unavailable"


def problem_body(
    *, status: int, code: str, title: str, detail: str, **extra: Any
) -> dict[str, Any]:
    """An RFC 9457 problem document (also stored as an idempotent request's outcome)."""
    body: dict[str, Any] = {
        "type": f"https://creditpool.dev/problems/{code.lower().replace('_', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    return jsonable_encoder(body | extra)


def problem_response(
    request: Request | None,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = problem_body(status=status, code=code, title=title, detail=detail)
    if request is not None:
        body["instance"] = request.url.path
        request_id = getattr(request.state, "request_id", None)
        if request_id:
            body["request_id"] = request_id
    body.update(jsonable_encoder(extra))
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


async def _app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return problem_response(
        request,
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        headers=exc.headers,
        **exc.extra,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
    title = code.replace("_", " ").capitalize()
    detail = exc.detail if isinstance(exc.detail, str) else title
    headers = getattr(exc, "headers", None)
    if exc.status_code == 405:
        headers = (headers or {}) | {"Allow": _allowed_methods(request)}
    return problem_response(
        request, status=exc.status_code, code=code, title=title, detail=detail, headers=headers
    )


def _allowed_methods(request: Request) -> str:
    # Starlette's Allow names only the first route that matched the path; a path served by
    # several routes (GET and POST /api/v1/withdrawals) allows all of their methods.
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        if (regex := getattr(route, "path_regex", None)) and regex.match(request.url.path):
            methods |= route.methods or set()
    return ", ".join(sorted(methods))


def _safe_error(err: Any) -> dict[str, Any]:
    # Echo where and why, never the submitted value (it may be a password).
    return {
        "loc": list(err.get("loc", ())),
        "msg": str(err.get("msg", "")),
        "type": err.get("type"),
    }


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [_safe_error(e) for e in exc.errors()]
    return problem_response(
        request,
        status=422,
        code="VALIDATION_ERROR",
        title="Request validation failed",
        detail="; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)[:1000],
        errors=errors,
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception(
        "unhandled error", extra={"request_id": getattr(request.state, "request_id", None)}
    )
    return problem_response(
        request,
        status=500,
        code="INTERNAL_ERROR",
        title="Internal server error",
        detail="An unexpected error occurred; quote the request id when reporting it.",
    )


# SQLSTATEs after which PostgreSQL has rolled the statement back, so nothing changed and the
# client may simply retry: query_canceled (statement timeout), serialization failure,
# deadlock, lock_not_available, and class 53 (insufficient resources, e.g. too many clients).
_ROLLED_BACK_SQLSTATES = ("57014", "40001", "40P01", "55P03", "53")
# SQLSTATEs that mean the connection went away (class 08) or the server is shutting down
# (57P01-57P03): a statement already sent may or may not have committed.
_LINK_LOST_SQLSTATES = ("08", "57P01", "57P02", "57P03")


# Database errors the error handler answers (SQLAlchemy's, and asyncpg's raised through the
# driver connection, e.g. the request log's COPY): 503 when transient, else 500.
DATABASE_ERRORS = (sa_exc.SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError)


class DatabaseBusy(ServiceUnavailable):
    """The database refused or rolled back the work: nothing changed, a retry is safe."""

    code, title = "DATABASE_BUSY", "Database busy"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": "1"})
        super().__init__(
            detail or "The database did not answer in time; nothing was changed. Retry shortly.",
            **kwargs,
        )


class OutcomeUnknown(ServiceUnavailable):
    """The link to the database broke after a money statement was sent: it may have committed."""

    code, title = "OUTCOME_UNKNOWN", "Outcome unknown"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": "1"})
        super().__init__(
            detail
            or "The connection to the database was lost after this request was sent, so it may "
            "or may not have taken effect. Retry with the same Idempotency-Key to learn the "
            "outcome; the retry never repeats what was done.",
            **kwargs,
        )


def _sqlstate(exc: BaseException) -> str | None:
    # asyncpg's errors, raw or wrapped by SQLAlchemy's adapter, carry the SQLSTATE.
    state = getattr(exc, "sqlstate", None)
    return state if isinstance(state, str) else None


def _unwrap(exc: BaseException) -> BaseException:
    if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None:
        return exc.orig
    return exc


def is_link_lost(exc: BaseException) -> bool:
    """The connection broke or the server shut down: work already sent has an unknown outcome."""
    if isinstance(exc, sa_exc.InterfaceError) or (
        isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated
    ):
        return True
    exc = _unwrap(exc)
    state = _sqlstate(exc)
    if state is not None:
        return state.startswith(_LINK_LOST_SQLSTATES)
    return isinstance(exc, asyncpg.InterfaceError | OSError)


# Rolled back because of other transactions, not because of the work itself: running the same
# work again may succeed (serialization failure, deadlock, lock not available).
_RETRYABLE_SQLSTATES = ("40001", "40P01", "55P03")


def is_retryable_database_error(exc: BaseException) -> bool:
    """PostgreSQL rolled the transaction back because of a concurrent one: safe to rerun."""
    if is_link_lost(exc):
        return False
    return _sqlstate(_unwrap(exc)) in _RETRYABLE_SQLSTATES


def is_transient_database_error(exc: BaseException) -> bool:
    """Busy or unreachable, not wrong: 503 rather than 500 (see is_link_lost for which 503)."""
    if isinstance(exc, sa_exc.TimeoutError) or is_link_lost(exc):  # pool wait, lost link
        return True
    state = _sqlstate(_unwrap(exc))
    if state is not None:
        return state.startswith(_ROLLED_BACK_SQLSTATES)
    return isinstance(_unwrap(exc), TimeoutError)


@asynccontextmanager
async def money_statement() -> AsyncIterator[None]:
    """Around a statement that moves money once sent: a lost link is OutcomeUnknown.

    Acquire the connection before entering, so that a refused connection (nothing sent) stays
    an ordinary "nothing changed" error.
    """
    try:
        yield
    except (*DATABASE_ERRORS, OSError) as exc:
        if is_link_lost(exc):
            raise OutcomeUnknown() from exc
        raise


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    if not is_transient_database_error(exc):
        return await _unexpected_error(request, exc)
    logger.warning(
        "database busy or unreachable: %s",
        type(exc).__name__,
        extra={"request_id": getattr(request.state, "request_id", None)},
    )
    return await _app_error(request, DatabaseBusy())


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    # asyncpg raises plain OS errors when PostgreSQL is unreachable.
    for kind in (*DATABASE_ERRORS, ConnectionError, TimeoutError):
        app.add_exception_handler(kind, _database_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)
