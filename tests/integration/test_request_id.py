"""X-Request-ID: accepted when sane or generated, on every answer, and carried to settlement."""

import re
import uuid

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from tests.support.api import admin_token, approved_merchant
from tests.support.money import top_up, withdraw
from tests.support.observability import core_api, json_lines, logged_requests, wait_for_logged


async def test_a_sane_id_is_echoed_and_an_insane_one_replaced(api: httpx.AsyncClient) -> None:
    echoed = await api.get("/healthz", headers={"X-Request-ID": "client-trace:42"})
    assert echoed.headers["X-Request-ID"] == "client-trace:42"
    for insane in ("has space", "x" * 129, "semi;colon"):
        replaced = await api.get("/healthz", headers={"X-Request-ID": insane})
        assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["X-Request-ID"])
    generated = await api.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["X-Request-ID"])


async def test_problem_bodies_and_server_errors_carry_the_id(
    settings: Settings, clean_db: None, redis: Redis
) -> None:
    async with core_api(settings) as running:

        async def crash() -> None:
            raise RuntimeError("a bug")

        running.app.add_api_route("/api/v1/test-crash", crash)
        headers = {"X-Request-ID": "trace-problem-1"}
        unauthorized = await running.client.get("/api/v1/me", headers=headers)
        crashed = await running.client.get("/api/v1/test-crash", headers=headers)
    for response in (unauthorized, crashed):
        assert response.headers["X-Request-ID"] == "trace-problem-1"
        assert response.json()["request_id"] == "trace-problem-1"
    assert crashed.status_code == 500
    assert "a bug" not in crashed.text


async def test_the_id_reaches_settlement_and_every_log_line_of_the_request(
    settings: Settings,
    clean_db: None,
    redis: Redis,
    sessionmaker: async_sessionmaker[AsyncSession],
    capsys: pytest.CaptureFixture[str],
) -> None:
    trace = f"trace-{uuid.uuid4().hex}"
    async with core_api(settings) as running:
        admin = await admin_token(running.client, sessionmaker)
        await top_up(running.client, admin, "100.00")
        _, merchant = await approved_merchant(running.client, admin)
        paid = await running.client.post(
            "/api/v1/withdrawals",
            json={"amount": "3.00"},
            headers={
                "Authorization": f"Bearer {merchant}",
                "Idempotency-Key": "traced",
                "X-Request-ID": trace,
            },
        )
        assert paid.status_code == 200, paid.text
    # The settlement server writes its row on its own schedule (about a second).
    (at_settlement,) = await wait_for_logged(sessionmaker, request_id=trace, service="settlement")
    (at_api,) = await logged_requests(sessionmaker, request_id=trace, service="api")
    # The sync hop's settle batch (of this one request) carries its first member's id.
    assert (at_settlement.method, at_settlement.path) == ("POST", "/api/settlement/withdraw/batch")
    assert at_settlement.status == 200
    assert at_api.withdrawal_id == uuid.UUID(paid.json()["withdrawal_id"])

    traced = [
        line for line in json_lines(capsys.readouterr().out) if line.get("request_id") == trace
    ]
    access = [line for line in traced if line["logger"] == "app.access"]
    # The settlement server runs in this process, so its access line is here too.
    assert [(line["service"], line["status"]) for line in access] == [
        ("settlement", 200),
        ("api", 200),
    ]
    events = [line["event"] for line in traced if line["logger"] == "app.money"]
    assert events == ["reserved", "settled"]


async def test_every_request_gets_its_own_generated_id(api: httpx.AsyncClient) -> None:
    first = await withdraw(api, "not-a-token")
    second = await withdraw(api, "not-a-token")
    assert first.status_code == second.status_code == 401
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]
