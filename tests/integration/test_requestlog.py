"""Every request to the core API leaves one api_request_log row, written off the request path."""

import uuid

from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.dev.embedded.process import free_port
from tests.support.api import PASSWORD, admin_token, approved_merchant, bearer, login, register
from tests.support.money import top_up, withdraw
from tests.support.observability import core_api, logged_requests, scrape

# Written only when flushed by hand or at shutdown: each test decides when rows appear. Rows
# are counted for service "api" only: the session's settlement server writes its own rows on
# its own schedule.
HELD = {"REQUEST_LOG_FLUSH_INTERVAL_S": 3600.0, "REQUEST_LOG_BATCH_ROWS": 10_000}


def _add_crashing_route(app: FastAPI) -> None:
    async def crash() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/api/v1/test-crash", crash)


async def test_every_status_is_logged_with_its_request_id(
    settings: Settings, clean_db: None, redis: Redis, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with core_api(settings, MAX_BODY_BYTES=1024, RL_MAX_REQUESTS=1, **HELD) as running:
        _add_crashing_route(running.app)
        api = running.client
        admin = await admin_token(api, sessionmaker)
        await top_up(api, admin, "100.00")
        _, merchant = await approved_merchant(api, admin)
        sent = {
            200: await api.get("/healthz"),
            401: await api.get("/api/v1/me"),
            404: await api.get("/no/such/path"),
            413: await api.post("/api/v1/auth/register", content=b"x" * 2048),
            422: await api.post("/api/v1/auth/register", json={"username": "x"}),
            500: await api.get("/api/v1/test-crash"),
        }
        paid = await withdraw(api, merchant, "1.00", key="first-key")
        limited = await withdraw(api, merchant, "1.00", key="second-key")
        await running.flush_request_log()
        rows = {r.request_id: r for r in await logged_requests(sessionmaker, service="api")}

    assert (paid.status_code, limited.status_code) == (200, 429)
    for status, response in [*sent.items(), (200, paid), (429, limited)]:
        assert response.status_code == status, response.text
        row = rows[response.headers["X-Request-ID"]]
        assert (row.service, row.status) == ("api", status)
        assert row.path == response.request.url.path
        assert row.method == response.request.method
        assert row.duration_ms >= 0
        assert row.client_addr == "127.0.0.1"
    paid_row = rows[paid.headers["X-Request-ID"]]
    assert paid_row.actor is not None and paid_row.actor.startswith("merchant:")
    assert paid_row.idempotency_key == "first-key"
    assert paid_row.withdrawal_id == uuid.UUID(paid.json()["withdrawal_id"])
    assert rows[limited.headers["X-Request-ID"]].actor == paid_row.actor
    assert rows[sent[401].headers["X-Request-ID"]].actor is None


async def test_rows_wait_in_memory_and_are_written_in_a_batch(
    settings: Settings, clean_db: None, redis: Redis, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with core_api(settings, **HELD) as running:
        for _ in range(3):
            assert (await running.client.get("/healthz")).status_code == 200
        # Answered, yet nothing written: the request did not wait for the database.
        assert len(await logged_requests(sessionmaker, service="api")) == 0
        assert len(running.app.state.request_log) == 3
        written_before = await scrape(
            running.client, "creditpool_request_log_written_rows_total", service="api"
        )
        assert await running.flush_request_log() == 4  # the scrape is logged too
        assert len(await logged_requests(sessionmaker, service="api")) == 4
        written = await scrape(
            running.client, "creditpool_request_log_written_rows_total", service="api"
        )
    assert written == written_before + 4


async def test_shutdown_writes_what_is_still_buffered(
    settings: Settings, clean_db: None, redis: Redis, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with core_api(settings, **HELD) as running:
        request_id = uuid.uuid4().hex
        await running.client.get("/healthz", headers={"X-Request-ID": request_id})
        assert len(await logged_requests(sessionmaker, service="api")) == 0
    assert len(await logged_requests(sessionmaker, request_id=request_id)) == 1


async def test_a_full_buffer_drops_rows_and_counts_them(
    settings: Settings, clean_db: None, redis: Redis, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with core_api(settings, REQUEST_LOG_BUFFER_ROWS=2, **HELD) as running:
        dropped_before = await scrape(
            running.client,
            "creditpool_request_log_dropped_rows_total",
            service="api",
            reason="buffer_full",
        )  # this scrape's own row is the buffer's first
        for _ in range(4):
            assert (await running.client.get("/healthz")).status_code == 200
        assert len(running.app.state.request_log) == 2
        dropped = await scrape(
            running.client,
            "creditpool_request_log_dropped_rows_total",
            service="api",
            reason="buffer_full",
        )
        await running.flush_request_log()
    assert dropped == dropped_before + 3
    assert len(await logged_requests(sessionmaker, service="api")) == 2


async def test_rows_lost_to_a_database_outage_are_counted(
    settings: Settings, clean_db: None, redis: Redis
) -> None:
    nothing_listens = f"postgresql://postgres@127.0.0.1:{free_port()}/creditpool"
    async with core_api(settings, DATABASE_URL=nothing_listens, **HELD) as running:
        lost = {"service": "api", "reason": "write_failed"}
        before = await scrape(running.client, "creditpool_request_log_dropped_rows_total", **lost)
        for _ in range(3):
            assert (await running.client.get("/healthz")).status_code == 200
        assert await running.flush_request_log() == 0
        after = await scrape(running.client, "creditpool_request_log_dropped_rows_total", **lost)
    assert after == before + 4  # the first scrape and three health checks


async def test_secrets_never_reach_the_log(
    settings: Settings,
    clean_db: None,
    redis: Redis,
    sessionmaker: async_sessionmaker[AsyncSession],
    capsys: object,
) -> None:
    async with core_api(settings, **HELD) as running:
        username = f"secretive-{uuid.uuid4().hex[:8]}"
        await register(running.client, username=username)
        tokens = await login(running.client, username)
        await running.client.post(
            "/api/v1/auth/token", data={"username": username, "password": PASSWORD}
        )
        await running.client.post("/api/v1/auth/token/refresh", json={"refresh": tokens["refresh"]})
        await running.client.get("/api/v1/me", headers=bearer(tokens["access"]))
        await running.flush_request_log()
        rows = await logged_requests(sessionmaker, service="api")
    stdout = capsys.readouterr().out  # type: ignore[attr-defined]
    assert len(rows) == 5, [(r.method, r.path, r.status, r.service) for r in rows]
    stored = " ".join(str(vars(row)) for row in rows)
    for secret in (PASSWORD, tokens["access"], tokens["refresh"]):
        assert secret not in stored
        assert secret not in stdout
