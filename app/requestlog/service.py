"""Reading the request log (admins only); app.observability.middleware writes it."""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.models import ApiRequestLog
from app.pagination import InvalidCursor, decode_cursor, encode_cursor
from app.requestlog import repository


def _decode(cursor: str) -> tuple[datetime, int]:
    created_at, row_id = decode_cursor(cursor, arity=2)
    if not isinstance(created_at, str) or not isinstance(row_id, int) or isinstance(row_id, bool):
        raise InvalidCursor()
    try:
        return datetime.fromisoformat(created_at), row_id
    except ValueError:
        raise InvalidCursor() from None


async def list_requests(
    session: AsyncSession,
    *,
    actor: str | None = None,
    status: int | None = None,
    path: str | None = None,
    service: str | None = None,
    request_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[ApiRequestLog], str | None]:
    """One page of logged requests, newest first, and the cursor of the next page."""
    rows = await repository.list_rows(
        session,
        actor=actor,
        status=status,
        path=path,
        service=service,
        request_id=request_id,
        since=since,
        until=until,
        before=_decode(cursor) if cursor is not None else None,
        limit=limit + 1,
    )
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor(last.created_at.isoformat(), last.id)
