"""The reconciler claims its rows FOR UPDATE SKIP LOCKED (a row another transaction holds is
skipped, not waited for) and talks to settlement BATCH_MAX withdrawals at a time."""

import asyncio
import math
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Receive, Scope, Send

from app.config import Settings
from app.models import Withdrawal, WithdrawalStatus
from app.settlement.main import create_app as create_settlement_app
from app.withdrawals.money_path import MoneyPath
from app.withdrawals.reconcile import reconcile
from app.withdrawals.settlement_client import create_http_client
from tests.support.factories import WithdrawalRecord, create_merchant, create_withdrawal, fund_pool
from tests.support.money import assert_books_balance, bank_transfers, withdrawal_row
from tests.support.servers import serve
from tests.support.stack import settlement_settings


async def _stuck(
    sessionmaker: async_sessionmaker[AsyncSession], count: int
) -> list[WithdrawalRecord]:
    """Reserved, PROCESSING withdrawals that settlement never received (e.g. sync-mode 202s)."""
    async with sessionmaker() as session, session.begin():
        await fund_pool(session, "1000.00")
        merchant = await create_merchant(session, credit_limit=Decimal("500.00"))
        return [
            await create_withdrawal(
                session, merchant=merchant, amount="10.00", status=WithdrawalStatus.PROCESSING
            )
            for _ in range(count)
        ]


async def test_reconcile_skips_a_row_another_transaction_holds_instead_of_waiting(
    settings: Settings,
    clean_db: None,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    money: MoneyPath,
) -> None:
    first, held, last = await _stuck(sessionmaker, 3)
    async with create_http_client(settings) as http:
        # Another transaction (a worker's claim, a finish) holds one row meanwhile.
        async with engine.connect() as holder, holder.begin():
            await holder.execute(
                select(Withdrawal.id).where(Withdrawal.id == held.id).with_for_update()
            )
            report = await asyncio.wait_for(
                reconcile(money, http=http, settings=settings, older_than=timedelta(0)),
                timeout=30,
            )
            assert (report.examined, report.outcomes) == (2, {"PAID": 2})
            skipped = await withdrawal_row(money, held.id)
            assert (skipped.status, skipped.attempts) == (WithdrawalStatus.PROCESSING, 0)
            assert await bank_transfers(sessionmaker) == {"PAID": 2}  # it was not sent
        # Released: the next run finishes it.
        again = await reconcile(money, http=http, settings=settings, older_than=timedelta(0))
    assert again.outcomes == {"PAID": 1}
    for withdrawal in (first, held, last):
        assert (await withdrawal_row(money, withdrawal.id)).status == WithdrawalStatus.SUCCESS
    assert await bank_transfers(sessionmaker) == {"PAID": 3}
    await assert_books_balance(sessionmaker)


class InFlight:
    """Counts settlement's concurrent requests: the most at once, and the rounds (times it
    went from idle to busy)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.now = self.most = self.rounds = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/settlement/withdraw"):
            await self.app(scope, receive, send)
            return
        self.rounds += self.now == 0
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await self.app(scope, receive, send)
        finally:
            self.now -= 1


@pytest.fixture
async def counted_settlement(settings: Settings) -> AsyncIterator[tuple[InFlight, str]]:
    # The bank takes a while, so the calls of one round overlap for sure.
    slow = settings.model_copy(update={"BANK_LATENCY_MS": 200})
    counter = InFlight(create_settlement_app(settlement_settings(slow)))
    async with serve(counter) as base_url:  # type: ignore[arg-type]
        yield counter, f"{base_url}/api/settlement/withdraw"


async def test_reconcile_talks_to_settlement_batch_max_withdrawals_at_a_time(
    settings: Settings,
    clean_db: None,
    sessionmaker: async_sessionmaker[AsyncSession],
    money: MoneyPath,
    counted_settlement: tuple[InFlight, str],
) -> None:
    counter, url = counted_settlement
    stuck, batch_max = 7, 3
    await _stuck(sessionmaker, stuck)
    reconciler = settings.model_copy(update={"SETTLEMENT_URL": url, "BATCH_MAX": batch_max})
    async with create_http_client(reconciler) as http:
        report = await reconcile(money, http=http, settings=reconciler, older_than=timedelta(0))
    assert report.outcomes == {"PAID": stuck}
    # At most BATCH_MAX in flight, in ceil(N / BATCH_MAX) rounds: neither one call per
    # withdrawal in turn nor all of them at once.
    assert counter.most <= batch_max
    assert counter.rounds <= math.ceil(stuck / batch_max), counter.rounds
    assert await bank_transfers(sessionmaker) == {"PAID": stuck}
    await assert_books_balance(sessionmaker)
