import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.api import admin_token, approved_merchant, bearer, login, register, unique_name


@pytest.fixture
async def admin(api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]) -> str:
    return await admin_token(api, sessionmaker)


async def _approve(
    api: httpx.AsyncClient, admin: str, merchant_id: int, limit: str
) -> httpx.Response:
    return await api.post(
        "/api/v1/admin/approve",
        json={"merchant_id": merchant_id, "credit_limit": limit},
        headers=bearer(admin),
    )


async def test_first_approval_opens_the_line_and_later_ones_change_the_limit(
    api: httpx.AsyncClient, admin: str
) -> None:
    merchant_id = (await register(api)).json()["merchant_id"]
    first = await _approve(api, admin, merchant_id, "100.00")
    assert first.json()["credit_limit"] == "100.00"
    account_id = first.json()["account_id"]
    second = await _approve(api, admin, merchant_id, "250.00")
    assert second.status_code == 200
    assert second.json()["credit_limit"] == "250.00"
    assert second.json()["account_id"] == account_id  # the same account, not a new one


async def test_limit_cannot_go_below_what_is_utilized(
    api: httpx.AsyncClient, admin: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    merchant_id, _ = await approved_merchant(api, admin, credit_limit="100.00")
    async with sessionmaker() as session, session.begin():
        await session.execute(
            text("UPDATE merchant_credits SET utilized_amount = 60 WHERE merchant_id = :m"),
            {"m": merchant_id},
        )
    refused = await _approve(api, admin, merchant_id, "59.99")
    assert refused.status_code == 409
    assert refused.json()["code"] == "CREDIT_LIMIT_BELOW_UTILIZED"
    detail = await api.get(f"/api/v1/admin/merchants/{merchant_id}", headers=bearer(admin))
    assert detail.json()["credit_limit"] == "100.00"
    assert (await _approve(api, admin, merchant_id, "60.00")).status_code == 200


async def test_unknown_merchant_is_404(api: httpx.AsyncClient, admin: str) -> None:
    response = await _approve(api, admin, 999999, "10.00")
    assert response.status_code == 404
    assert response.json()["code"] == "MERCHANT_NOT_FOUND"
    assert (
        await api.get("/api/v1/admin/merchants/999999", headers=bearer(admin))
    ).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"merchant_id": 1, "credit_limit": "-1"},
        {"merchant_id": 1, "credit_limit": "1.001"},
        {"merchant_id": 0, "credit_limit": "1.00"},
        {"merchant_id": "x", "credit_limit": "1.00"},
        {"merchant_id": 2**70, "credit_limit": "1.00"},
        {"credit_limit": "1.00"},
        {"merchant_id": 1, "credit_limit": "1.00", "extra": 1},
    ],
)
async def test_bad_approval_bodies_are_422(api: httpx.AsyncClient, admin: str, body: dict) -> None:
    response = await api.post("/api/v1/admin/approve", json=body, headers=bearer(admin))
    assert response.status_code == 422


async def test_suspend_and_reactivate(api: httpx.AsyncClient, admin: str) -> None:
    username = unique_name()
    merchant_id, merchant = await approved_merchant(api, admin, username=username)
    suspended = await api.post(
        f"/api/v1/admin/merchants/{merchant_id}/suspend", headers=bearer(admin)
    )
    assert suspended.json()["status"] == "SUSPENDED"
    old_token = await api.get("/api/v1/me", headers=bearer(merchant))
    assert old_token.status_code == 401  # a suspension revokes the merchant's tokens
    merchant = (await login(api, username))["access"]
    me = await api.get("/api/v1/me", headers=bearer(merchant))
    assert me.json()["status"] == "SUSPENDED"
    assert me.json()["is_approved"] is False
    # A new limit does not lift the suspension.
    assert (await _approve(api, admin, merchant_id, "500.00")).json()["status"] == "SUSPENDED"
    again = await api.post(
        f"/api/v1/admin/merchants/{merchant_id}/reactivate", headers=bearer(admin)
    )
    assert again.json()["status"] == "APPROVED"
    assert again.json()["credit_limit"] == "500.00"


async def test_pending_merchant_cannot_be_suspended_or_reactivated(
    api: httpx.AsyncClient, admin: str
) -> None:
    merchant_id = (await register(api)).json()["merchant_id"]
    for action in ("suspend", "reactivate"):
        response = await api.post(
            f"/api/v1/admin/merchants/{merchant_id}/{action}", headers=bearer(admin)
        )
        assert response.status_code == 409
        assert response.json()["code"] == "INVALID_STATUS_TRANSITION"


async def test_list_filters_by_status_and_pages_with_a_cursor(
    api: httpx.AsyncClient, admin: str
) -> None:
    pending = [(await register(api)).json()["merchant_id"] for _ in range(5)]
    approved, _ = await approved_merchant(api, admin)
    seen: list[int] = []
    cursor = None
    while True:
        params = {"status": "PENDING_APPROVAL", "limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (
            await api.get("/api/v1/admin/merchants", params=params, headers=bearer(admin))
        ).json()
        seen += [item["merchant_id"] for item in page["items"]]
        assert all(item["status"] == "PENDING_APPROVAL" for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(pending, reverse=True)
    assert approved not in seen


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "not-a-cursor"},
        {"cursor": "WyJ4Il0"},
        {"limit": 0},
        {"limit": 1000},
        {"status": "BOGUS"},
    ],
)
async def test_bad_list_parameters_are_422(
    api: httpx.AsyncClient, admin: str, params: dict
) -> None:
    response = await api.get("/api/v1/admin/merchants", params=params, headers=bearer(admin))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
