"""A connection lost after a money statement was sent: the client hears "outcome unknown,
retry with the same key", never "nothing changed", and the retry learns what happened."""

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import make_url, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.ledger import repository as ledger
from app.main import create_app
from app.models import MerchantCredit, Withdrawal, WithdrawalStatus
from app.withdrawals.money_path import MoneyPath
from app.withdrawals.reconcile import reconcile
from app.withdrawals.settlement_client import create_http_client
from tests.conftest import _client_for
from tests.support.api import admin_token, approved_merchant, bearer
from tests.support.cut_proxy import COMMIT, cut_after_commit
from tests.support.money import assert_books_balance, bank_transfers, top_up, withdraw


def _through(settings: Settings, port: int) -> Settings:
    url = make_url(settings.database_url).set(port=port)
    return settings.model_copy(update={"DATABASE_URL": url.render_as_string(False)})


async def test_reply_lost_after_the_reserve_committed_is_503_outcome_unknown_then_replayed(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    money: MoneyPath,
    clean_db: None,
) -> None:
    database_url = make_url(settings.database_url)
    assert database_url.port is not None
    async with cut_after_commit(database_url.port, b"INSERT INTO withdrawals", then=COMMIT) as (
        port,
        proxy,
    ):
        async for api in _client_for(create_app(_through(settings, port)), "http://api.test"):
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
                    money, http=http, settings=settings, older_than=timedelta(0)
                )
            assert report.outcomes == {"PAID": 1}
            final = await withdraw(api, merchant, "7.00", key="lost-reply")
            assert final.status_code == 200, final.text
            assert final.json()["withdrawal_id"] == str(withdrawal.id)
    assert await bank_transfers(sessionmaker) == {"PAID": 1}
    async with sessionmaker() as session:
        assert len((await session.scalars(select(Withdrawal))).all()) == 1
    await assert_books_balance(sessionmaker)


async def test_top_up_whose_commit_reply_is_lost_is_outcome_unknown_then_replayed_once(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], clean_db: None
) -> None:
    database_url = make_url(settings.database_url)
    assert database_url.port is not None
    # The top-up's transaction: its claim row first, then the cut when COMMIT is answered.
    async with cut_after_commit(database_url.port, b"pool_topups", then=COMMIT) as (port, proxy):
        async for api in _client_for(create_app(_through(settings, port)), "http://api.test"):
            admin = bearer(await admin_token(api, sessionmaker))
            body = {"amount": "250.00"}
            headers = admin | {"Idempotency-Key": "wire-7"}
            lost = await api.post("/api/v1/admin/pool/topup", json=body, headers=headers)
            assert proxy.cut.is_set()
            assert lost.status_code == 503, lost.text
            assert lost.json()["code"] == "OUTCOME_UNKNOWN"
            retry = await api.post("/api/v1/admin/pool/topup", json=body, headers=headers)
            assert retry.status_code == 200, retry.text
            assert retry.headers["idempotent-replayed"] == "true"
            assert retry.json() == {"pool_available": "250.00"}
    async with sessionmaker() as session:
        assert await ledger.pool_available(session) == Decimal("250.00")
    await assert_books_balance(sessionmaker)
