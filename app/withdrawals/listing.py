"""A merchant's own withdrawals: one by id, or pages newest first."""

from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.models import WithdrawalStatus
from app.pagination import InvalidCursor, decode_cursor, encode_cursor
from app.withdrawals import repository
from app.withdrawals.errors import WithdrawalNotFound
from app.withdrawals.repository import WithdrawalRow


async def get_withdrawal(
    session: AsyncSession, *, merchant_id: int, withdrawal_id: UUID
) -> WithdrawalRow:
    """The merchant's withdrawal; another merchant's id is indistinguishable from none."""
    row = await repository.get(session, withdrawal_id=withdrawal_id, merchant_id=merchant_id)
    if row is None:
        raise WithdrawalNotFound(f"withdrawal {withdrawal_id} not found")
    return row


def _decode(cursor: str) -> tuple[datetime, UUID]:
    created_at, withdrawal_id = decode_cursor(cursor, arity=2)
    try:
        return datetime.fromisoformat(created_at), UUID(withdrawal_id)
    except (TypeError, ValueError):
        raise InvalidCursor() from None


async def list_withdrawals(
    session: AsyncSession,
    *,
    merchant_id: int,
    status: WithdrawalStatus | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[WithdrawalRow], str | None]:
    """One page, newest first, and the next page's cursor (None on the last page)."""
    rows = await repository.list_for_merchant(
        session,
        merchant_id=merchant_id,
        status=status,
        before=_decode(cursor) if cursor else None,
        limit=limit + 1,
    )
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor(last.created_at.isoformat(), str(last.id))
