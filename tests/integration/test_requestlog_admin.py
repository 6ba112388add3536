"""GET /api/v1/admin/requests: admins read the request log by actor, status, path and time."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from tests.support.api import admin_token, approved_merchant, bearer
from tests.support.observability import RunningApp, core_api

HELD = {"REQUEST_LOG_FLUSH_INTERVAL_S": 3600.0, "REQUEST_LOG_BATCH_ROWS": 10_000}


@pytest.fixture
async def running(settings: Settings, clean_db: None, redis: Redis) -> AsyncIterator[RunningApp]:
    async with core_api(settings, **HELD) as app:
        yield app


async def _page(api: httpx.AsyncClient, admin: str, **params: Any) -> dict[str, Any]:
    response = await api.get("/api/v1/admin/requests", params=params, headers=bearer(admin))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_admin_filters_by_actor_status_path_and_time(
    running: RunningApp, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    api = running.client
    admin = await admin_token(api, sessionmaker)
    merchant_id, merchant = await approved_merchant(api, admin)
    await api.get("/api/v1/me", headers=bearer(merchant))
    await api.get("/api/v1/withdrawals", headers=bearer(merchant))
    await api.get("/api/v1/me")  # 401, no actor
    await running.flush_request_log()

    actor = f"merchant:{merchant_id}"
    mine = await _page(api, admin, actor=actor)
    assert [(i["method"], i["path"], i["status"]) for i in mine["items"]] == [
        ("GET", "/api/v1/withdrawals", 200),
        ("GET", "/api/v1/me", 200),
    ]
    assert all(i["actor"] == actor and i["service"] == "api" for i in mine["items"])
    unauthenticated = await _page(api, admin, status=401)
    assert [(i["path"], i["actor"]) for i in unauthenticated["items"]] == [("/api/v1/me", None)]
    by_prefix = await _page(api, admin, path="/api/v1/with")
    assert [i["path"] for i in by_prefix["items"]] == ["/api/v1/withdrawals"]
    assert (await _page(api, admin, path="/api/v1/me", status=200))["items"][0]["actor"] == actor
    api_only = await _page(api, admin, service="api")
    assert api_only["items"] and {i["service"] for i in api_only["items"]} == {"api"}

    now = datetime.now(UTC)
    recent = await _page(api, admin, since=(now - timedelta(minutes=5)).isoformat())
    assert len(recent["items"]) >= 6
    assert (await _page(api, admin, until=(now - timedelta(minutes=5)).isoformat()))["items"] == []
    naive_future = (now + timedelta(minutes=5)).replace(tzinfo=None).isoformat()
    assert (await _page(api, admin, since=naive_future))["items"] == []


async def test_pages_follow_the_cursor_newest_first(
    running: RunningApp, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    api = running.client
    admin = await admin_token(api, sessionmaker)
    ids = []
    for _ in range(5):
        ids.append((await api.get("/healthz")).headers["X-Request-ID"])
    await running.flush_request_log()
    seen, cursor = [], None
    while True:
        params = {"path": "/healthz", "limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await _page(api, admin, **params)
        assert len(page["items"]) <= 2
        seen += [item["request_id"] for item in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == list(reversed(ids))
    found = await _page(api, admin, request_id=ids[2])
    assert [item["request_id"] for item in found["items"]] == [ids[2]]


async def test_only_admins_read_the_log(
    running: RunningApp, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    api = running.client
    admin = await admin_token(api, sessionmaker)
    _, merchant = await approved_merchant(api, admin)
    assert (await api.get("/api/v1/admin/requests")).status_code == 401
    forbidden = await api.get("/api/v1/admin/requests", headers=bearer(merchant))
    assert forbidden.status_code == 403
    bad_cursor = await api.get(
        "/api/v1/admin/requests", params={"cursor": "not-a-cursor"}, headers=bearer(admin)
    )
    assert (bad_cursor.status_code, bad_cursor.json()["code"]) == (422, "INVALID_CURSOR")
    bad_status = await api.get(
        "/api/v1/admin/requests", params={"status": 99}, headers=bearer(admin)
    )
    assert bad_status.status_code == 422
