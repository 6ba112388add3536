"""Refresh tokens rotate: each works once, and a reused one revokes its whole login."""

import asyncio
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.api import admin_token, approved_merchant, bearer, login, register, unique_name


async def _refresh(api: httpx.AsyncClient, token: str) -> httpx.Response:
    return await api.post("/api/v1/auth/token/refresh", json={"refresh": token})


async def _merchant_tokens(api: httpx.AsyncClient) -> tuple[str, dict[str, Any]]:
    username = unique_name()
    assert (await register(api, username=username)).status_code == 201
    return username, await login(api, username)


def _assert_401(response: httpx.Response, code: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


async def test_refresh_returns_a_new_refresh_token_and_the_old_one_stops_working(
    api: httpx.AsyncClient,
) -> None:
    _, first = await _merchant_tokens(api)
    rotated = await _refresh(api, first["refresh"])
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert {"access", "refresh", "access_token", "token_type", "expires_in"} <= second.keys()
    assert second["refresh"] != first["refresh"]
    assert (await api.get("/api/v1/me", headers=bearer(second["access"]))).status_code == 200

    _assert_401(await _refresh(api, first["refresh"]), "REFRESH_TOKEN_REUSED")


async def test_a_reused_refresh_token_revokes_the_whole_family(api: httpx.AsyncClient) -> None:
    username, stolen = await _merchant_tokens(api)
    # The thief refreshes first; the victim later presents the same (older) token.
    thief = (await _refresh(api, stolen["refresh"])).json()
    _assert_401(await _refresh(api, stolen["refresh"]), "REFRESH_TOKEN_REUSED")
    # The newest token of that login is dead too, so the thief is locked out...
    _assert_401(await _refresh(api, thief["refresh"]), "INVALID_TOKEN")
    # ...while another login of the same user goes on working.
    other = await login(api, username)
    assert (await _refresh(api, other["refresh"])).status_code == 200


async def test_two_concurrent_refreshes_with_one_token_rotate_it_once(
    api: httpx.AsyncClient,
) -> None:
    _, tokens = await _merchant_tokens(api)
    answers = await asyncio.gather(*[_refresh(api, tokens["refresh"]) for _ in range(2)])
    assert sorted(a.status_code for a in answers) == [200, 401]
    # The second one was a reuse: the token the first one got is revoked with its family.
    (winner,) = [a.json() for a in answers if a.status_code == 200]
    _assert_401(await _refresh(api, winner["refresh"]), "INVALID_TOKEN")


async def test_suspension_revokes_access_and_refresh_tokens(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    admin = await admin_token(api, sessionmaker)
    username = unique_name()
    merchant_id, _ = await approved_merchant(api, admin, username=username)
    tokens = await login(api, username)
    suspended = await api.post(
        f"/api/v1/admin/merchants/{merchant_id}/suspend", headers=bearer(admin)
    )
    assert suspended.status_code == 200
    _assert_401(await api.get("/api/v1/me", headers=bearer(tokens["access"])), "INVALID_TOKEN")
    _assert_401(await _refresh(api, tokens["refresh"]), "INVALID_TOKEN")
    # A fresh login works and shows the suspension; withdrawing is what it cannot do.
    me = await api.get("/api/v1/me", headers=bearer((await login(api, username))["access"]))
    assert me.json()["status"] == "SUSPENDED"
