"""Stuck withdrawals, seen beside what settlement knows of each."""

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.models import WithdrawalStatus
from app.operations import repository
from app.operations.schemas import SettlementView, StuckWithdrawalOut, StuckWithdrawals
from app.withdrawals import settlement_client
from app.withdrawals.settlement_http import HopClient

# Settlement questions in flight at once for one listing: an operator's page must not
# compete with payouts for settlement's capacity.
LOOKUP_CONCURRENCY = 8


async def stuck_withdrawals(
    session: AsyncSession, *, http: HopClient, settings: Settings, older_than_s: int, limit: int
) -> StuckWithdrawals:
    """Open withdrawals created more than `older_than_s` ago, oldest first, each with what
    settlement answers for it now. Read-only: nothing is finished or sent."""
    now = datetime.now(UTC)
    rows = await repository.open_older_than(
        session, cutoff=now - timedelta(seconds=older_than_s), limit=limit
    )
    gate = asyncio.Semaphore(LOOKUP_CONCURRENCY)

    async def ask(withdrawal_id: UUID) -> settlement_client.SettlementAnswer:
        async with gate:
            return await settlement_client.lookup(http, settings, withdrawal_id)

    answers = await asyncio.gather(*(ask(row.id) for row in rows))
    items = [
        StuckWithdrawalOut(
            withdrawal_id=row.id,
            merchant_id=row.merchant_id,
            status=WithdrawalStatus(row.status),
            amount=row.amount,
            attempts=row.attempts,
            created_at=row.created_at,
            updated_at=row.updated_at,
            age_s=round((now - row.created_at).total_seconds(), 3),
            settlement=SettlementView(
                outcome=answer.outcome,
                bank_reference=answer.bank_reference,
                failure_code=answer.failure_code,
            ),
        )
        for row, answer in zip(rows, answers, strict=True)
    ]
    return StuckWithdrawals(older_than_s=older_than_s, items=items)
