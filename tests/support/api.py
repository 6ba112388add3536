"""Drive the real API the way a merchant or admin would."""

import itertools
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.admins import create_admin

PASSWORD = "correct-horse-battery"
ADMIN_PASSWORD = "admin-password-123"
_names = itertools.count(1)


def unique_name(prefix: str = "merchant") -> str:
    return f"{prefix}{next(_names)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(api: httpx.AsyncClient, **overrides: Any) -> httpx.Response:
    body = {
        "username": unique_name(),
        "password": PASSWORD,
        "requested_credit": "1000.00",
        "bank_account": "DE89370400440532013000",
    } | overrides
    return await api.post("/api/v1/auth/register", json=body)


async def login(api: httpx.AsyncClient, username: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await api.post(
        "/api/v1/auth/token", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def admin_token(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> str:
    username = unique_name("admin")
    async with sessionmaker() as session, session.begin():
        await create_admin(session, username=username, password=ADMIN_PASSWORD)
    return str((await login(api, username, ADMIN_PASSWORD))["access"])


async def approved_merchant(
    api: httpx.AsyncClient,
    admin: str,
    *,
    credit_limit: Decimal | str = "100.00",
    **register_overrides: Any,
) -> tuple[int, str]:
    """Register, approve and log in a merchant; returns (merchant_id, access token)."""
    username = register_overrides.pop("username", unique_name())
    registered = await register(api, username=username, **register_overrides)
    assert registered.status_code == 201, registered.text
    merchant_id = registered.json()["merchant_id"]
    approved = await api.post(
        "/api/v1/admin/approve",
        json={"merchant_id": merchant_id, "credit_limit": str(credit_limit)},
        headers=bearer(admin),
    )
    assert approved.status_code == 200, approved.text
    return merchant_id, str((await login(api, username))["access"])
