"""The money path in sync mode, through the real app, database and settlement over HTTP."""

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import MerchantCredit, Withdrawal
from tests.support.api import admin_token, approved_merchant, bearer, register
from tests.support.money import assert_books_balance, bank_transfers, top_up, withdraw


@pytest.fixture
async def admin(api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]) -> str:
    token = await admin_token(api, sessionmaker)
    await top_up(api, token, "1000.00")
    return token


async def test_happy_path_pays_out_and_the_books_balance(
    api: httpx.AsyncClient, admin: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    _, merchant = await approved_merchant(api, admin, credit_limit="100.00")
    response = await withdraw(api, merchant, "25.50")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "SUCCESS"
    assert body["amount"] == "25.50"
    assert body["bank_reference"].startswith("BNK-")
    assert body["tx_id"]
    me = (await api.get("/api/v1/me", headers=bearer(merchant))).json()
    assert (me["utilized_amount"], me["available_credit"]) == ("25.50", "74.50")
    pool = (await api.get("/api/v1/admin/pool", headers=bearer(admin))).json()
    assert pool == {
        "available": "974.50",
        "in_flight": "0.00",
        "paid_out": "25.50",
        "funded": "1000.00",
    }
    fetched = await api.get(
        f"/api/v1/withdrawals/{body['withdrawal_id']}", headers=bearer(merchant)
    )
    assert fetched.json()["status"] == "SUCCESS"
    assert fetched.json()["tx_id"] == body["tx_id"]
    assert await bank_transfers(sessionmaker) == {"PAID": 1}
    await assert_books_balance(sessionmaker)


async def test_insufficient_credit_is_409_and_reserves_nothing(
    api: httpx.AsyncClient, admin: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    _, merchant = await approved_merchant(api, admin, credit_limit="10.00")
    response = await withdraw(api, merchant, "10.01")
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "INSUFFICIENT_MERCHANT_CREDIT"
    async with sessionmaker() as session:
        assert (await session.scalars(select(Withdrawal))).all() == []
        assert (await session.scalar(select(MerchantCredit.utilized_amount))) == 0
    await assert_books_balance(sessionmaker)


async def test_insufficient_pool_is_409_and_reserves_nothing(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    admin = await admin_token(api, sessionmaker)
    await top_up(api, admin, "5.00")
    _, merchant = await approved_merchant(api, admin, credit_limit="100.00")
    response = await withdraw(api, merchant, "5.01", key="pool-key")
    assert response.status_code == 409
    assert response.json()["code"] == "INSUFFICIENT_POOL"
    replay = await withdraw(api, merchant, "5.01", key="pool-key")
    assert replay.status_code == 409
    assert replay.headers["idempotent-replayed"] == "true"
    me = (await api.get("/api/v1/me", headers=bearer(merchant))).json()
    assert me["utilized_amount"] == "0.00"
    assert (await withdraw(api, merchant, "5.00")).status_code == 200
    await assert_books_balance(sessionmaker)


async def test_refused_payout_fails_and_releases_the_credit(
    api: httpx.AsyncClient, admin: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    _, merchant = await approved_merchant(
        api, admin, credit_limit="50.00", bank_account="IRREJECT0001"
    )
    response = await withdraw(api, merchant, "20.00")
    assert response.status_code == 422
    body = response.json()
    assert (body["code"], body["withdrawal_status"], body["failure_code"]) == (
        "SETTLEMENT_REFUSED",
        "FAILED",
        "ACCOUNT_REJECTED",
    )
    fetched = await api.get(
        f"/api/v1/withdrawals/{body['withdrawal_id']}", headers=bearer(merchant)
    )
    assert fetched.json()["status"] == "FAILED"
    me = (await api.get("/api/v1/me", headers=bearer(merchant))).json()
    assert me["utilized_amount"] == "0.00"
    pool = (await api.get("/api/v1/admin/pool", headers=bearer(admin))).json()
    assert (pool["available"], pool["in_flight"], pool["paid_out"]) == ("1000.00", "0.00", "0.00")
    assert "PAID" not in await bank_transfers(sessionmaker)
    await assert_books_balance(sessionmaker)


async def test_pending_and_suspended_merchants_cannot_withdraw(
    api: httpx.AsyncClient, admin: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    username = "pending-merchant"
    await register(api, username=username)
    from tests.support.api import login

    pending = (await login(api, username))["access"]
    refused = await withdraw(api, pending, "1.00")
    assert refused.status_code == 403
    assert refused.json()["code"] == "MERCHANT_NOT_APPROVED"

    merchant_id, merchant = await approved_merchant(api, admin, username="suspended-merchant")
    await api.post(f"/api/v1/admin/merchants/{merchant_id}/suspend", headers=bearer(admin))
    revoked = await withdraw(api, merchant, "1.00")  # the suspension revoked its tokens
    assert revoked.status_code == 401
    relogged = (await login(api, "suspended-merchant"))["access"]
    suspended = await withdraw(api, relogged, "1.00")
    assert suspended.status_code == 403
    assert suspended.json()["code"] == "MERCHANT_NOT_APPROVED"
    assert await bank_transfers(sessionmaker) == {}
    await assert_books_balance(sessionmaker)


async def test_merchants_see_only_their_own_withdrawals(api: httpx.AsyncClient, admin: str) -> None:
    _, alice = await approved_merchant(api, admin)
    _, bob = await approved_merchant(api, admin)
    alices = [(await withdraw(api, alice, f"{i}.00")).json()["withdrawal_id"] for i in (1, 2, 3)]
    bobs = (await withdraw(api, bob, "4.00")).json()["withdrawal_id"]
    stolen = await api.get(f"/api/v1/withdrawals/{bobs}", headers=bearer(alice))
    assert stolen.status_code == 404
    assert stolen.json()["code"] == "WITHDRAWAL_NOT_FOUND"
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await api.get("/api/v1/withdrawals", params=params, headers=bearer(alice))).json()
        seen += [item["withdrawal_id"] for item in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == list(reversed(alices))
    only_success = await api.get(
        "/api/v1/withdrawals", params={"status": "FAILED"}, headers=bearer(alice)
    )
    assert only_success.json()["items"] == []


async def test_admin_pool_endpoints(api: httpx.AsyncClient, admin: str) -> None:
    for amount in ("0", "-1", "1.001", "NaN"):
        bad = await api.post(
            "/api/v1/admin/pool/topup", json={"amount": amount}, headers=bearer(admin)
        )
        assert bad.status_code == 422
    assert (await top_up(api, admin, "0.01")).json() == {"pool_available": "1000.01"}
    audit = await api.get("/api/v1/admin/audit", headers=bearer(admin))
    assert audit.status_code == 200
    assert audit.json()["ok"] is True
    _, merchant = await approved_merchant(api, admin)
    for path in ("/api/v1/admin/pool", "/api/v1/admin/audit"):
        assert (await api.get(path, headers=bearer(merchant))).status_code == 403
