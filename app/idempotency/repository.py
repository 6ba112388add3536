"""Idempotency keys (the claim itself is in creditpool_reserve(), alembic/versions/0003)."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select, text
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


# Keys of final work only: a stored answer and either no withdrawal (a final refusal) or a
# withdrawal that is SUCCESS or FAILED. A claim in flight or a 202 whose withdrawal is still
# open stays, so its replays keep learning the withdrawal. created_at <= completed_at, so the
# first condition only lets the created_at index narrow the scan.
_DELETE_FINAL_BATCH = text(
    """
DELETE FROM idempotency_keys k
 USING (
    SELECT k2.merchant_id, k2.key
      FROM idempotency_keys k2
      LEFT JOIN withdrawals w ON w.id = k2.withdrawal_id
     WHERE k2.created_at < :cutoff AND k2.completed_at < :cutoff
       AND k2.response_status IS NOT NULL
       AND (k2.withdrawal_id IS NULL OR w.status IN ('SUCCESS', 'FAILED'))
     LIMIT :batch
       FOR UPDATE OF k2 SKIP LOCKED
 ) expired
 WHERE k.merchant_id = expired.merchant_id AND k.key = expired.key
"""
)


async def delete_final_batch(session: AsyncSession, *, cutoff: datetime, batch: int) -> int:
    """Drop up to `batch` keys of final work whose retention ended before `cutoff`."""
    result = await session.execute(_DELETE_FINAL_BATCH, {"cutoff": cutoff, "batch": batch})
    return int(result.rowcount)  # type: ignore[attr-defined]
