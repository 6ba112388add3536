"""A database too busy to answer in time gives 503 or 202, never a 500, and moves nothing twice."""

import asyncio
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.main import create_app
from app.models import IdempotencyKey, Withdrawal
from app.settlement.main import create_app as create_settlement_app
from app.withdrawals.money_path import create_money_path
from app.withdrawals.reconcile import reconcile
from app.withdrawals.settlement_client import create_http_client
from tests.conftest import _client_for
from tests.support.api import admin_token, approved_merchant
from tests.support.money import assert_books_balance, bank_transfers, count_rows, top_up, withdraw
from tests.support.servers import serve
from tests.support.stack import settlement_settings

IMPATIENT = {"DB_STATEMENT_TIMEOUT_MS": 300}


async def test_pool_row_held_elsewhere_gives_503_and_changes_nothing(
    settings: Settings,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    clean_db: None,
) -> None:
    async for api in _client_for(create_app(settings.model_copy(update=IMPATIENT)), "http://a"):
        admin = await admin_token(api, sessionmaker)
        await top_up(api, admin, "100.00")
        _, merchant = await approved_merchant(api, admin)
        async with engine.connect() as blocker:
            await blocker.execute(text("SELECT * FROM credit_pool WHERE id = 1 FOR UPDATE"))
            busy = await withdraw(api, merchant, "5.00", key="busy")
            await blocker.rollback()
        assert busy.status_code == 503, busy.text
        assert busy.json()["code"] == "DATABASE_BUSY"
        assert busy.headers["retry-after"] == "1"
        assert await count_rows(sessionmaker, Withdrawal) == 0
        assert await count_rows(sessionmaker, IdempotencyKey) == 0
        assert (await withdraw(api, merchant, "5.00", key="busy")).status_code == 200
    await assert_books_balance(sessionmaker)


async def test_finish_blocked_after_payment_answers_202_and_reconcile_records_it_once(
    settings: Settings,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    clean_db: None,
) -> None:
    slow_bank = settings.model_copy(update={"BANK_LATENCY_MS": 500})
    async with serve(create_settlement_app(settlement_settings(slow_bank))) as slow_settlement:
        impatient = settings.model_copy(
            update=IMPATIENT | {"SETTLEMENT_URL": f"{slow_settlement}/api/settlement/withdraw"}
        )
        async for api in _client_for(create_app(impatient), "http://a"):
            admin = await admin_token(api, sessionmaker)
            await top_up(api, admin, "100.00")
            _, merchant = await approved_merchant(api, admin)
            request = asyncio.create_task(withdraw(api, merchant, "5.00", key="late"))
            async with engine.connect() as blocker:
                # Once reserved (and while the bank is slow), hold the withdrawal's row lock.
                while not (
                    await blocker.execute(text("SELECT id FROM withdrawals FOR UPDATE"))
                ).first():
                    await blocker.rollback()
                    await asyncio.sleep(0.01)
                answered = await request
                await blocker.rollback()
            assert answered.status_code == 202, answered.text
            assert answered.json()["status"] == "PROCESSING"
    assert await bank_transfers(sessionmaker) == {"PAID": 1}
    async with create_http_client(settings) as http:
        money = create_money_path(engine, settings)
        try:
            report = await reconcile(money, http=http, settings=settings, older_than=timedelta(0))
        finally:
            await money.aclose()
    assert report.outcomes == {"PAID": 1}
    assert await bank_transfers(sessionmaker) == {"PAID": 1}
    await assert_books_balance(sessionmaker)
