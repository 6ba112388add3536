"""Idempotency keys as Core statements: claimed in the reservation's own transaction."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import IdempotencyKey

_keys = cast(Table, IdempotencyKey.__table__)


@dataclass(frozen=True)
class StoredKey:
    request_hash: str
    response_status: int | None
    response_body: dict[str, Any] | None


async def claim(session: AsyncSession, *, merchant_id: int, key: str, request_hash: str) -> bool:
    """Claim the key; False when it exists (a concurrent claim waits for the other to commit)."""
    claimed = await session.scalar(
        insert(_keys)
        .values(merchant_id=merchant_id, key=key, request_hash=request_hash)
        .on_conflict_do_nothing()
        .returning(_keys.c.key)
    )
    return claimed is not None


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
    session: AsyncSession,
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
    await session.execute(query.values(values))


async def insert_completed(
    session: AsyncSession,
    *,
    merchant_id: int,
    key: str,
    request_hash: str,
    status: int,
    body: dict[str, Any],
) -> None:
    """Store a final outcome for a key whose claim was rolled back (no-op if claimed since)."""
    await session.execute(
        insert(_keys)
        .values(
            merchant_id=merchant_id,
            key=key,
            request_hash=request_hash,
            response_status=status,
            response_body=body,
            completed_at=func.now(),
        )
        .on_conflict_do_nothing()
    )


async def delete_created_before(session: AsyncSession, *, cutoff: datetime) -> int:
    """Drop keys past their retention; only completed keys go, a claim in flight stays."""
    result = await session.execute(
        delete(_keys).where(_keys.c.created_at < cutoff, _keys.c.completed_at.is_not(None))
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
