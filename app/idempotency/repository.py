"""Idempotency keys (the claim itself is in creditpool_reserve(), alembic/versions/0003)."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import asyncpg
from sqlalchemy import Table, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

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


_STORE_PENDING_ANSWER = (
    "UPDATE idempotency_keys SET response_status = $3, response_body = $4, "
    "completed_at = now(), withdrawal_id = $5 "
    "WHERE merchant_id = $1 AND key = $2 AND response_status IS NULL"
)


async def store_pending_answer(
    db: asyncpg.Pool,
    *,
    merchant_id: int,
    key: str,
    status: int,
    body: dict[str, Any],
    withdrawal_id: UUID,
) -> None:
    """Record a provisional answer (202) for replays of this key, one statement on the
    statement pool; never over a final answer the reconciler may already have written."""
    await db.execute(_STORE_PENDING_ANSWER, merchant_id, key, status, body, withdrawal_id)


async def delete_created_before(session: AsyncSession, *, cutoff: datetime) -> int:
    """Drop keys past their retention; only completed keys go, a claim in flight stays."""
    result = await session.execute(
        delete(_keys).where(_keys.c.created_at < cutoff, _keys.c.completed_at.is_not(None))
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
