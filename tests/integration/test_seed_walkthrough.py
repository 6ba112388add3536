"""The seed's walkthrough (README "Walkthrough"), verbatim, against the dev configuration."""

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.dev.devstack import bootstrap_admin
from tests.support.api import register
from tests.support.money import assert_books_balance
from tests.support.observability import core_api

JSON = {"content-type": "application/json"}


def _dev_settings(settings: Settings) -> Settings:
    """What `make run` runs with: ENVIRONMENT=dev and nothing else chosen (the admin's
    password stands in for the one `make run` prints)."""
    return Settings(
        ENVIRONMENT="dev",
        DATABASE_URL=settings.DATABASE_URL,
        REDIS_URL=settings.REDIS_URL,
        SETTLEMENT_URL=settings.SETTLEMENT_URL,
        ADMIN_USERNAME="admin",
        ADMIN_PASSWORD="admin-password",
    )


async def test_the_seed_walkthrough_works_verbatim_in_dev_mode(
    settings: Settings, clean_db: None, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """README "Walkthrough", request by request, in its order."""
    dev = _dev_settings(settings)
    await bootstrap_admin(dev)  # as `make run` does before serving
    async with core_api(dev) as running:
        api = running.client
        registered = await api.post(
            "/api/v1/auth/register",
            content='{"username": "m1", "password": "p", "requested_credit": "1000.00", '
            '"bank_account": "DE89370400440532013000"}',
            headers=JSON,
        )
        assert registered.status_code == 201, registered.text
        assert registered.json()["status"] == "PENDING_APPROVAL"
        merchant_id = registered.json()["merchant_id"]

        admin_login = await api.post(
            "/api/v1/auth/token",
            content='{"username": "admin", "password": "admin-password"}',
            headers=JSON,
        )
        assert admin_login.status_code == 200, admin_login.text
        admin = {"Authorization": f"Bearer {admin_login.json()['access']}"}

        approved = await api.post(
            "/api/v1/admin/approve",
            content=f'{{"merchant_id": {merchant_id}, "credit_limit": "1000.00"}}',
            headers=admin | JSON,
        )
        assert approved.status_code == 200, approved.text

        topped_up = await api.post(
            "/api/v1/admin/pool/topup", content='{"amount": "100000.00"}', headers=admin | JSON
        )
        assert topped_up.status_code == 200, topped_up.text
        assert topped_up.json()["pool_available"] == "100000.00"

        login = await api.post(
            "/api/v1/auth/token", content='{"username": "m1", "password": "p"}', headers=JSON
        )
        assert login.status_code == 200, login.text
        m1 = {"Authorization": f"Bearer {login.json()['access']}"}

        withdrawn = await api.post(
            "/api/v1/withdrawals",
            content='{"amount": "25.00"}',
            headers=m1 | JSON | {"Idempotency-Key": "walkthrough-1"},
        )
        assert withdrawn.status_code == 200, withdrawn.text
        assert withdrawn.json()["status"] == "SUCCESS"
        assert withdrawn.json()["amount"] == "25.00"

        me = await api.get("/api/v1/me", headers=m1)
        assert me.status_code == 200, me.text
        assert me.json()["username"] == "m1"
        assert me.json()["merchant_id"] == merchant_id
        assert me.json()["is_approved"] is True
        assert (me.json()["utilized_amount"], me.json()["available_credit"]) == ("25.00", "975.00")
    await assert_books_balance(sessionmaker)


async def test_outside_dev_mode_the_seeds_password_is_too_short(api: httpx.AsyncClient) -> None:
    """Test (like production) mode keeps the 8-character minimum; the username is fine."""
    registered = await api.post(
        "/api/v1/auth/register",
        json={
            "username": "m1",
            "password": "p",
            "requested_credit": "1000.00",
            "bank_account": "DE89370400440532013000",
        },
    )
    assert registered.status_code == 422
    assert registered.json()["code"] == "PASSWORD_TOO_SHORT"


async def test_one_character_usernames_are_accepted(api: httpx.AsyncClient) -> None:
    assert (await register(api, username="a")).status_code == 201
    assert (await register(api, username="m1000")).status_code == 201
