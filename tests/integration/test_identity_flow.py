"""Register -> approve -> token -> /me, through the real app and database."""

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import MerchantCredit, WalletAccount
from tests.support.api import admin_token, bearer, login, register, unique_name


async def test_register_approve_login_and_me(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    username = unique_name()
    registered = await register(api, username=username, requested_credit="250.50")
    assert registered.status_code == 201
    merchant_id = registered.json()["merchant_id"]
    assert registered.json() == {"merchant_id": merchant_id, "status": "PENDING_APPROVAL"}

    tokens = await login(api, username)
    assert {"access", "refresh", "access_token", "token_type", "expires_in"} <= tokens.keys()
    assert tokens["access"] == tokens["access_token"]
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 3600

    pending = await api.get("/api/v1/me", headers=bearer(tokens["access"]))
    assert pending.status_code == 200
    assert pending.json()["is_approved"] is False
    assert pending.json()["account_id"] is None
    assert pending.json()["credit_limit"] == "0.00"

    admin = await admin_token(api, sessionmaker)
    approved = await api.post(
        "/api/v1/admin/approve",
        json={"merchant_id": merchant_id, "credit_limit": "200.00"},
        headers=bearer(admin),
    )
    assert approved.status_code == 200
    assert approved.json()["status"] == "APPROVED"

    me = await api.get("/api/v1/me", headers=bearer(tokens["access"]))
    assert me.status_code == 200
    body = me.json()
    assert body == {
        "merchant_id": merchant_id,
        "username": username,
        "status": "APPROVED",
        "is_approved": True,
        "account_id": body["account_id"],
        "bank_account": "DE89370400440532013000",
        "credit_limit": "200.00",
        "utilized_amount": "0.00",
        "available_credit": "200.00",
    }
    assert body["account_id"] is not None


async def test_no_account_or_credit_line_exists_before_approval(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    assert (await register(api)).status_code == 201
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(WalletAccount)) == 0
        assert await session.scalar(select(func.count()).select_from(MerchantCredit)) == 0


async def test_refresh_token_gives_a_working_access_token(api: httpx.AsyncClient) -> None:
    username = unique_name()
    await register(api, username=username)
    tokens = await login(api, username)
    refreshed = await api.post("/api/v1/auth/token/refresh", json={"refresh": tokens["refresh"]})
    assert refreshed.status_code == 200
    access = refreshed.json()["access"]
    assert refreshed.json()["access_token"] == access
    assert (await api.get("/api/v1/me", headers=bearer(access))).status_code == 200


async def test_access_token_is_not_accepted_as_refresh(api: httpx.AsyncClient) -> None:
    username = unique_name()
    await register(api, username=username)
    tokens = await login(api, username)
    response = await api.post("/api/v1/auth/token/refresh", json={"refresh": tokens["access"]})
    assert response.status_code == 401
    assert response.json()["code"] == "INVALID_TOKEN"


async def test_swagger_form_login_works(api: httpx.AsyncClient) -> None:
    username = unique_name()
    await register(api, username=username)
    # Exactly what Swagger UI's Authorize dialog sends.
    response = await api.post(
        "/api/v1/auth/token",
        data={
            "grant_type": "password",
            "username": username,
            "password": "correct-horse-battery",
            "scope": "",
            "client_id": "",
            "client_secret": "",
        },
    )
    assert response.status_code == 200
    assert response.json()["token_type"] == "bearer"
    me = await api.get("/api/v1/me", headers=bearer(response.json()["access_token"]))
    assert me.status_code == 200


async def test_openapi_declares_the_password_flow(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    schemes = spec["components"]["securitySchemes"]
    flow = next(iter(schemes.values()))["flows"]["password"]
    assert flow["tokenUrl"] == "/api/v1/auth/token"
    token_body = spec["paths"]["/api/v1/auth/token"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/x-www-form-urlencoded"} <= token_body.keys()
