"""The per-merchant withdrawal rate limit, through the real app, Redis and PostgreSQL."""

import asyncio
import logging

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.dev.embedded.process import free_port
from app.models import IdempotencyKey, Withdrawal
from app.ratelimit import deps
from app.ratelimit.limiter import SlidingWindowLimiter
from tests.support.api import admin_token, approved_merchant, bearer
from tests.support.money import assert_books_balance, bank_transfers, count_rows, top_up, withdraw
from tests.support.observability import core_api, scrape


async def _funded_merchants(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession], count: int = 1
) -> list[str]:
    admin = await admin_token(client, sessionmaker)
    await top_up(client, admin, "1000.00")
    return [(await approved_merchant(client, admin))[1] for _ in range(count)]


async def test_allowed_withdrawals_carry_the_ratelimit_headers(
    settings: Settings, clean_db: None, redis: Redis, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with core_api(settings, RL_MAX_REQUESTS=3, RL_WINDOW_SEC=60) as running:
        (merchant,) = await _funded_merchants(running.client, sessionmaker)
        answers = [await withdraw(running.client, merchant, "1.00") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    for answer in answers:
        assert answer.headers["RateLimit-Policy"] == '"withdrawals";q=3;w=60'
    remaining = [a.headers["RateLimit"].split(";")[1] for a in answers]
    assert remaining == ["r=2", "r=1", "r=0"]
    seconds_left = int(answers[0].headers["RateLimit"].split(";t=")[1])
    assert 1 <= seconds_left <= 60


async def test_over_the_limit_is_429_and_stores_no_key_and_moves_no_money(
    settings: Settings, clean_db: None, redis: Redis, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with core_api(settings, RL_MAX_REQUESTS=2, RL_WINDOW_SEC=60) as running:
        (merchant,) = await _funded_merchants(running.client, sessionmaker)
        rejections_before = await scrape(
            running.client, "creditpool_ratelimit_rejections_total", limit="withdrawals"
        )
        assert (await withdraw(running.client, merchant, "1.00")).status_code == 200
        assert (await withdraw(running.client, merchant, "1.00")).status_code == 200
        refused = await withdraw(running.client, merchant, "5.00", key="over-the-limit")
        rejections = await scrape(
            running.client, "creditpool_ratelimit_rejections_total", limit="withdrawals"
        )
        me = (await running.client.get("/api/v1/me", headers=bearer(merchant))).json()

    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    body = refused.json()
    assert (body["code"], body["status"]) == ("RATE_LIMITED", 429)
    assert body["request_id"] == refused.headers["X-Request-ID"]
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert refused.headers["RateLimit"] == f'"withdrawals";r=0;t={retry_after}'
    assert refused.headers["RateLimit-Policy"] == '"withdrawals";q=2;w=60'
    assert rejections == rejections_before + 1
    # Refused before the handler: no key claimed, nothing reserved, nothing paid.
    assert await count_rows(sessionmaker, IdempotencyKey) == 2
    assert await count_rows(sessionmaker, Withdrawal) == 2
    assert await bank_transfers(sessionmaker) == {"PAID": 2}
    assert me["utilized_amount"] == "2.00"
    await assert_books_balance(sessionmaker)


async def test_the_limit_is_per_merchant(
    settings: Settings, clean_db: None, redis: Redis, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with core_api(settings, RL_MAX_REQUESTS=1, RL_WINDOW_SEC=60) as running:
        alice, bob = await _funded_merchants(running.client, sessionmaker, count=2)
        assert (await withdraw(running.client, alice, "1.00")).status_code == 200
        assert (await withdraw(running.client, alice, "1.00")).status_code == 429
        assert (await withdraw(running.client, bob, "1.00")).status_code == 200


async def test_a_refused_request_comes_back_when_the_window_slides_on(
    settings: Settings, clean_db: None, redis: Redis, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with core_api(settings, RL_MAX_REQUESTS=1, RL_WINDOW_SEC=1) as running:
        (merchant,) = await _funded_merchants(running.client, sessionmaker)
        assert (await withdraw(running.client, merchant, "1.00")).status_code == 200
        refused = await withdraw(running.client, merchant, "1.00", key="retry-me")
        assert refused.status_code == 429
        await asyncio.sleep(int(refused.headers["Retry-After"]) + 0.1)
        retried = await withdraw(running.client, merchant, "1.00", key="retry-me")
    assert retried.status_code == 200, retried.text
    assert "idempotent-replayed" not in retried.headers


async def test_zero_disables_the_limit(
    settings: Settings, clean_db: None, redis: Redis, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with core_api(settings, RL_MAX_REQUESTS=0, RL_WINDOW_SEC=60) as running:
        (merchant,) = await _funded_merchants(running.client, sessionmaker)
        answers = [await withdraw(running.client, merchant, "1.00") for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert all("RateLimit" not in a.headers for a in answers)
    assert await redis.keys("ratelimit:withdrawals:*") == []


async def test_redis_down_lets_withdrawals_through_counted_and_logged(
    settings: Settings,
    clean_db: None,
    sessionmaker: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(deps, "_last_unavailable_log", float("-inf"))
    nothing_listens = f"redis://127.0.0.1:{free_port()}/0"
    async with core_api(settings, REDIS_URL=nothing_listens, RL_MAX_REQUESTS=1) as running:
        (merchant,) = await _funded_merchants(running.client, sessionmaker)
        before = await scrape(
            running.client, "creditpool_ratelimit_unavailable_total", limit="withdrawals"
        )
        with caplog.at_level(logging.WARNING, logger="app.ratelimit"):
            answers = [await withdraw(running.client, merchant, "1.00") for _ in range(3)]
        after = await scrape(
            running.client, "creditpool_ratelimit_unavailable_total", limit="withdrawals"
        )
    # Fail open: over the limit of 1, yet paid, because PostgreSQL still guards the money.
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert all("RateLimit" not in a.headers for a in answers)
    assert after == before + 3
    warnings = [r for r in caplog.records if r.name == "app.ratelimit"]
    assert len(warnings) == 1  # one line per interval, not one per request
    assert "rate limit unavailable" in warnings[0].getMessage()
    await assert_books_balance(sessionmaker)


async def test_the_window_admits_exactly_the_limit_under_concurrency(redis: Redis) -> None:
    limiter = SlidingWindowLimiter(redis)
    decisions = await asyncio.gather(
        *(limiter.hit("ratelimit:test:concurrent", limit=5, window_s=60) for _ in range(20))
    )
    assert sum(d.allowed for d in decisions) == 5
    assert sorted(d.remaining for d in decisions if d.allowed) == [0, 1, 2, 3, 4]
    assert all(d.remaining == 0 and 1 <= d.reset_s <= 60 for d in decisions if not d.allowed)
    assert await redis.zcard("ratelimit:test:concurrent") == 5
    assert 0 < await redis.pttl("ratelimit:test:concurrent") <= 60_000
