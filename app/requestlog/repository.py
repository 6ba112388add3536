"""All SQL of the request log: the batch COPY and the admin's filtered, keyset-paged reads."""

from collections.abc import Sequence
from datetime import datetime
from operator import attrgetter
from typing import TYPE_CHECKING

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.models import ApiRequestLog

if TYPE_CHECKING:
    from app.requestlog.buffer import RequestLogRow

TABLE = ApiRequestLog.__tablename__
# RequestLogRow's fields, in the order COPY sends them.
COLUMNS = (
    "created_at",
    "service",
    "method",
    "path",
    "status",
    "duration_ms",
    "actor",
    "request_id",
    "client_addr",
    "idempotency_key",
    "withdrawal_id",
)
# A row's values as a tuple in COLUMNS order (dataclasses.astuple deep-copies every field).
_values = attrgetter(*COLUMNS)


async def copy_rows(engine: AsyncEngine, rows: Sequence["RequestLogRow"]) -> None:
    """One COPY for the whole batch: one round trip, and no prepared statement per batch size."""
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        # COPY is asyncpg's; outside an explicit transaction it commits on its own.
        await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
            TABLE, records=[_values(row) for row in rows], columns=COLUMNS
        )


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def list_rows(
    session: AsyncSession,
    *,
    actor: str | None,
    status: int | None,
    path: str | None,
    service: str | None,
    request_id: str | None,
    since: datetime | None,
    until: datetime | None,
    before: tuple[datetime, int] | None,
    limit: int,
) -> list[ApiRequestLog]:
    """Newest first by (created_at, id); `before` is the last row of the previous page."""
    query = select(ApiRequestLog)
    if actor is not None:
        query = query.where(ApiRequestLog.actor == actor)
    if status is not None:
        query = query.where(ApiRequestLog.status == status)
    if path is not None:
        query = query.where(ApiRequestLog.path.like(_escape_like(path) + "%", escape="\\"))
    if service is not None:
        query = query.where(ApiRequestLog.service == service)
    if request_id is not None:
        query = query.where(ApiRequestLog.request_id == request_id)
    if since is not None:
        query = query.where(ApiRequestLog.created_at >= since)
    if until is not None:
        query = query.where(ApiRequestLog.created_at < until)
    if before is not None:
        query = query.where(tuple_(ApiRequestLog.created_at, ApiRequestLog.id) < before)
    query = query.order_by(ApiRequestLog.created_at.desc(), ApiRequestLog.id.desc()).limit(limit)
    return list((await session.scalars(query)).all())
