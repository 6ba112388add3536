"""Stuck withdrawals are visible: gauges of their age and attempts, and an admin listing
beside what settlement knows of each."""

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.models import Withdrawal, WithdrawalStatus
from app.withdrawals import settlement_client
from app.withdrawals.money_path import MoneyPath
from app.withdrawals.settlement_client import create_http_client
from tests.support.api import admin_token, bearer
from tests.support.factories import create_merchant, create_withdrawal, fund_pool
from tests.support.money import assert_books_balance, withdrawal_row
from tests.support.observability import samples

IBAN = "DE89370400440532013000"


async def _open_withdrawals(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> dict[str, Withdrawal]:
    """Old PROCESSING (2 attempts), old QUEUED (0 attempts, never sent), a fresh
    PROCESSING one (7 attempts) and a SUCCESS one that is not open at all."""
    async with sessionmaker() as session, session.begin():
        await fund_pool(session, "1000.00")
        merchant = await create_merchant(session, bank_account=IBAN)
        made = {
            name: await create_withdrawal(session, merchant=merchant, amount="10.00", status=status)
            for name, status in (
                ("old_processing", WithdrawalStatus.PROCESSING),
                ("old_queued", WithdrawalStatus.QUEUED),
                ("fresh", WithdrawalStatus.PROCESSING),
                ("done", WithdrawalStatus.SUCCESS),
            )
        }
        now = datetime.now(UTC)
        for name, age_min, attempts in (
            ("old_processing", 30, 2),
            ("old_queued", 20, 0),
            ("fresh", 0, 7),
            ("done", 60, 1),
        ):
            await session.execute(
                update(Withdrawal)
                .where(Withdrawal.id == made[name].id)
                .values(created_at=now - timedelta(minutes=age_min), attempts=attempts)
            )
    return made  # type: ignore[return-value]


async def test_gauges_show_the_oldest_open_withdrawal_and_open_ones_by_attempts(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await _open_withdrawals(sessionmaker)
    text = (await api.get("/metrics")).text
    oldest = samples(text, "creditpool_oldest_open_withdrawal_age_seconds")
    # 30 minutes old, not the 60-minute SUCCESS one (a scrape takes well under 5 minutes).
    assert 30 * 60 <= oldest < 35 * 60
    by_attempts = "creditpool_open_withdrawals_by_attempts"
    assert samples(text, by_attempts, attempts="0") == 1
    assert samples(text, by_attempts, attempts="2") == 1
    assert samples(text, by_attempts, attempts="5+") == 1
    assert samples(text, by_attempts, attempts="1") == 0  # the SUCCESS one is not open
    assert samples(text, "creditpool_pool_low_water") == 1000.0


async def test_with_nothing_open_the_oldest_age_is_zero(api: httpx.AsyncClient) -> None:
    text = (await api.get("/metrics")).text
    assert samples(text, "creditpool_oldest_open_withdrawal_age_seconds") == 0


async def test_admin_lists_open_withdrawals_older_than_n_with_settlements_view(
    api: httpx.AsyncClient,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    money: MoneyPath,
) -> None:
    made = await _open_withdrawals(sessionmaker)
    # Settlement paid the old PROCESSING one (its answer never came back); it never heard of
    # the QUEUED one.
    async with create_http_client(settings) as http:
        order = await withdrawal_row(money, made["old_processing"].id)
        paid = await settlement_client.pay(http, settings, order)
    admin = await admin_token(api, sessionmaker)

    response = await api.get(
        "/api/v1/admin/withdrawals/stuck", params={"older_than_s": 600}, headers=bearer(admin)
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["older_than_s"] == 600
    listed = [(item["withdrawal_id"], item["status"]) for item in body["items"]]
    assert listed == [
        (str(made["old_processing"].id), "PROCESSING"),
        (str(made["old_queued"].id), "QUEUED"),
    ]
    was_paid, never_heard = body["items"]
    assert never_heard["settlement"] == {
        "outcome": "NOT_RECEIVED",
        "bank_reference": None,
        "failure_code": None,
    }
    assert was_paid["settlement"]["outcome"] == "PAID"
    assert was_paid["settlement"]["bank_reference"] == paid.bank_reference
    assert (was_paid["amount"], was_paid["attempts"]) == ("10.00", 2)
    assert was_paid["age_s"] >= 30 * 60
    # Only a look: nothing was finished or moved.
    assert (await withdrawal_row(money, made["old_processing"].id)).status == "PROCESSING"
    await assert_books_balance(sessionmaker)


async def test_the_stuck_listing_is_for_admins_and_refuses_bad_input(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    path = "/api/v1/admin/withdrawals/stuck"
    assert (await api.get(path)).status_code == 401
    admin = await admin_token(api, sessionmaker)
    for params in ({"older_than_s": -1}, {"older_than_s": "x"}, {"limit": 0}, {"limit": 101}):
        response = await api.get(path, params=params, headers=bearer(admin))
        assert response.status_code == 422, params
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "VALIDATION_ERROR"
