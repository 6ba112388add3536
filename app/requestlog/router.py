"""The admin's view of the request log: GET /api/v1/admin/requests."""

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import WithJsonSchema

from app.auth.deps import AdminUser
from app.db import SessionDep
from app.pagination import Cursor, Limit
from app.requestlog import service
from app.requestlog.schemas import RequestLogOut, RequestLogPage

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])
# PostgreSQL text cannot hold a NUL; a filter with one is a client error, not a 500.
_NO_NUL = r"^[^\x00]*$"
# Pydantic reads a number as seconds since 1970, so the document says so too.
Moment = Annotated[
    datetime,
    WithJsonSchema(
        {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "number"}]},
        mode="validation",
    ),
]


def _utc(moment: datetime | None) -> datetime | None:
    # A time without an offset is read as UTC, the zone every row is stored in.
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@router.get(
    "/requests",
    response_model=RequestLogPage,
    responses={
        422: {"description": "VALIDATION_ERROR / INVALID_CURSOR: not a next_cursor this API gave"}
    },
)
async def list_requests(
    _admin: AdminUser,
    session: SessionDep,
    actor: Annotated[
        str | None, Query(max_length=80, pattern=_NO_NUL, description="e.g. merchant:12")
    ] = None,
    status: Annotated[int | None, Query(ge=100, le=599, description="HTTP status")] = None,
    path: Annotated[
        str | None,
        Query(max_length=512, pattern=_NO_NUL, description="path, or its beginning (a prefix)"),
    ] = None,
    service_name: Annotated[
        Literal["api", "settlement"] | None, Query(alias="service", description="which app")
    ] = None,
    request_id: Annotated[
        str | None, Query(max_length=128, pattern=_NO_NUL, description="X-Request-ID")
    ] = None,
    since: Annotated[Moment | None, Query(description="from this time on (inclusive)")] = None,
    until: Annotated[Moment | None, Query(description="before this time (exclusive)")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> RequestLogPage:
    """Logged requests to both apps, newest first; follow `next_cursor` for older ones.

    Rows are written in batches about a second after the request, so the latest requests may
    not be visible yet.
    """
    rows, next_cursor = await service.list_requests(
        session,
        actor=actor,
        status=status,
        path=path,
        service=service_name,
        request_id=request_id,
        since=_utc(since),
        until=_utc(until),
        cursor=cursor,
        limit=limit,
    )
    return RequestLogPage(
        items=[RequestLogOut.model_validate(row) for row in rows], next_cursor=next_cursor
    )
