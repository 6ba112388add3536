"""/metrics on both apps: HTTP traffic by route template, money outcomes and money gauges."""

from decimal import Decimal

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support import factories
from tests.support.api import admin_token, approved_merchant, bearer
from tests.support.money import top_up, withdraw
from tests.support.observability import samples, scrape

WITHDRAWAL_ROUTE = {"service": "api", "method": "POST", "route": "/api/v1/withdrawals"}


async def test_both_apps_serve_prometheus_text(
    api: httpx.AsyncClient, settlement_api: httpx.AsyncClient
) -> None:
    for client, service in ((api, "api"), (settlement_api, "settlement")):
        await client.get("/healthz")
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        labels = {"service": service, "route": "/healthz", "status": "200"}
        assert samples(response.text, "creditpool_http_requests_total", **labels) >= 1
        assert samples(response.text, "creditpool_http_request_duration_seconds_count", **labels)


async def test_requests_are_counted_by_route_template_and_status(api: httpx.AsyncClient) -> None:
    labels = {"route": "/api/v1/withdrawals/{withdrawal_id}", "status": "401"}
    unmatched = {"route": "<unmatched>", "status": "404"}
    before = await scrape(api, "creditpool_http_requests_total", **labels)
    before_unmatched = await scrape(api, "creditpool_http_requests_total", **unmatched)
    for n in range(3):
        await api.get(f"/api/v1/withdrawals/00000000-0000-0000-0000-00000000000{n}")
        await api.get(f"/scanner/probe/{n}")
    assert await scrape(api, "creditpool_http_requests_total", **labels) == before + 3
    assert await scrape(api, "creditpool_http_requests_total", **unmatched) == before_unmatched + 3


async def test_withdrawal_outcomes_settlement_latency_and_replays_are_counted(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    admin = await admin_token(api, sessionmaker)
    await top_up(api, admin, "100.00")
    _, merchant = await approved_merchant(api, admin)
    _, rejected = await approved_merchant(api, admin, bank_account="IRREJECT0002")

    async def counts() -> list[float]:
        text = (await api.get("/metrics")).text
        return [
            samples(text, "creditpool_withdrawals_total", outcome="reserved"),
            samples(text, "creditpool_withdrawals_total", outcome="settled"),
            samples(text, "creditpool_withdrawals_total", outcome="released"),
            samples(text, "creditpool_idempotent_replays_total"),
            samples(text, "creditpool_settlement_request_duration_seconds_count", method="POST"),
            samples(text, "creditpool_http_requests_total", **WITHDRAWAL_ROUTE, status="200"),
        ]

    before = await counts()
    assert (await withdraw(api, merchant, "2.00", key="paid")).status_code == 200
    assert (await withdraw(api, merchant, "2.00", key="paid")).status_code == 200  # replay
    assert (await withdraw(api, rejected, "2.00")).status_code == 422  # the bank refuses
    assert (await withdraw(api, merchant, "500.00")).status_code == 409  # no money moves
    after = await counts()
    assert [a - b for a, b in zip(after, before, strict=True)] == [2, 1, 1, 1, 2, 2]


async def test_pool_and_in_flight_gauges_are_read_from_the_database(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with sessionmaker() as session, session.begin():
        await factories.fund_pool(session, "500.00")
        merchant = await factories.create_merchant(session, credit_limit=Decimal("100.00"))
        for status, amount in (("PROCESSING", "20.00"), ("QUEUED", "5.50"), ("SUCCESS", "30")):
            await factories.create_withdrawal(
                session, merchant=merchant, amount=amount, status=status
            )
    text = (await api.get("/metrics")).text
    assert samples(text, "creditpool_pool_available") == 500 - 20 - 5.5 - 30
    assert samples(text, "creditpool_in_flight_amount") == 25.5
    assert samples(text, "creditpool_in_flight_withdrawals") == 2
    admin = await admin_token(api, sessionmaker)
    pool = (await api.get("/api/v1/admin/pool", headers=bearer(admin))).json()
    assert (pool["available"], pool["in_flight"]) == ("444.50", "25.50")
