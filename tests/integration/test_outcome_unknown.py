"""A connection lost after a money statement was sent: the client hears "outcome unknown,
retry with the same key", never "nothing changed", and the retry learns what happened."""

from datetime import timedelta

import asyncpg
from sqlalchemy import make_url, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.main import create_app
from app.models import MerchantCredit, Withdrawal, WithdrawalStatus
from app.withdrawals.reconcile import reconcile
from app.withdrawals.settlement_client import create_http_client
from tests.conftest import _client_for
from tests.support.api import admin_token, approved_merchant
from tests.support.cut_proxy import cut_after_commit
from tests.support.money import assert_books_balance, bank_transfers, top_up, withdraw


async def test_reply_lost_after_the_reserve_committed_is_503_outcome_unknown_then_replayed(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    db_pool: asyncpg.Pool,
    clean_db: None,
) -> None:
    database_url = make_url(settings.database_url)
    assert database_url.port is not None
    async with cut_after_commit(database_url.port, b"creditpool_reserve") as (port, proxy):
        proxied = settings.model_copy(
            update={"DATABASE_URL": database_url.set(port=port).render_as_string(False)}
        )
        async for api in _client_for(create_app(proxied), "http://api.test"):
            admin = await admin_token(api, sessionmaker)
            await top_up(api, admin, "100.00")
            merchant_id, merchant = await approved_merchant(api, admin)
            lost = await withdraw(api, merchant, "7.00", key="lost-reply")
            assert proxy.cut.is_set()
            assert lost.status_code == 503, lost.text
            assert lost.headers["content-type"] == "application/problem+json"
            assert lost.json()["code"] == "OUTCOME_UNKNOWN"
            assert "same Idempotency-Key" in lost.json()["detail"]
            # It did commit: the money is reserved, nothing was paid yet.
            async with sessionmaker() as session:
                withdrawal = (await session.scalars(select(Withdrawal))).one()
                credit = await session.get(MerchantCredit, merchant_id)
            assert withdrawal.status == WithdrawalStatus.PROCESSING
            assert credit is not None and credit.utilized_amount == 7
            # The retry, on a healthy connection, learns the withdrawal instead of making one.
            retry = await withdraw(api, merchant, "7.00", key="lost-reply")
            assert retry.status_code == 202, retry.text
            assert retry.headers["idempotent-replayed"] == "true"
            assert retry.json() == {"withdrawal_id": str(withdrawal.id), "status": "PROCESSING"}
            async with create_http_client(settings) as http:
                report = await reconcile(
                    db_pool, http=http, settings=settings, older_than=timedelta(0)
                )
            assert report.outcomes == {"PAID": 1}
            final = await withdraw(api, merchant, "7.00", key="lost-reply")
            assert final.status_code == 200, final.text
            assert final.json()["withdrawal_id"] == str(withdrawal.id)
    assert await bank_transfers(sessionmaker) == {"PAID": 1}
    async with sessionmaker() as session:
        assert len((await session.scalars(select(Withdrawal))).all()) == 1
    await assert_books_balance(sessionmaker)
