"""Idempotency keys as Core statements (the claim itself is in creditpool_reserve(), 0002)."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Executor
from app.models import IdempotencyKey

_keys = cast(Table, IdempotencyKey.__table__)


@dataclass(frozen=True)
class StoredKey:
    request_hash: str
    response_status: int | None
    response_body: dict[str, Any] | None


async def get(session: AsyncSession, *, merchant_id: int, key: str) -> StoredKey | None:
    row = (
        await session.execute(
            select(_keys.c.request_hash, _keys.c.response_status, _keys.c.response_body).where(
                _keys.c.merchant_id == merchant_id, _keys.c.key == key
            )
        )
    ).first()
    return StoredKey(*row) if row else None


async def store_response(
    conn: Executor,
    *,
    merchant_id: int,
    key: str,
    status: int,
    body: dict[str, Any],
    withdrawal_id: UUID | None = None,
    only_if_open: bool = False,
) -> None:
    """Record the answer that replays of this key will get.

    `only_if_open` stores a provisional answer (202) without overwriting a final one that the
    reconciler may already have written.
    """
    values: dict[str, Any] = {
        "response_status": status,
        "response_body": body,
        "completed_at": func.now(),
    }
    if withdrawal_id is not None:
        values["withdrawal_id"] = withdrawal_id
    query = update(_keys).where(_keys.c.merchant_id == merchant_id, _keys.c.key == key)
    if only_if_open:
        query = query.where(_keys.c.response_status.is_(None))
    await conn.execute(query.values(values))


async def delete_created_before(session: AsyncSession, *, cutoff: datetime) -> int:
    """Drop keys past their retention; only completed keys go, a claim in flight stays."""
    result = await session.execute(
        delete(_keys).where(_keys.c.created_at < cutoff, _keys.c.completed_at.is_not(None))
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
