"""The load-test kit: `python -m app seed` and `python -m app tokens`, as load testers run them."""

import asyncio
import os
import subprocess
import sys

import httpx
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.models import LedgerEntry, Merchant, MerchantStatus, Withdrawal
from tests.support.api import bearer
from tests.support.money import assert_books_balance, count_rows, withdraw


async def _app_command(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "ENVIRONMENT": "test",
        "DATABASE_URL": str(settings.DATABASE_URL),
        "REDIS_URL": str(settings.REDIS_URL),
    }
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "app", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_seed_creates_approved_merchants_and_funds_the_pool_five_times(
    api: httpx.AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    seeded = await _app_command(
        settings, "seed", "--merchants", "40", "--credit", "1000.00", "--password", "p"
    )
    assert seeded.returncode == 0, seeded.stderr
    assert "merchants=40, credit/merchant=1000.00, pool_available=200000.00" in seeded.stdout
    assert "40/40 merchants" in seeded.stderr  # the progress bar
    async with sessionmaker() as session:
        statuses = await session.execute(
            select(Merchant.status, func.count()).group_by(Merchant.status)
        )
        assert dict(statuses.all()) == {MerchantStatus.APPROVED: 40}
    again = await _app_command(settings, "seed", "--merchants", "40", "--password", "p")
    assert "pool_available=200000.00" in again.stdout  # idempotent: nothing added twice
    assert await count_rows(sessionmaker, Merchant) == 40
    await assert_books_balance(sessionmaker)


async def test_tokens_let_each_seeded_merchant_withdraw(
    api: httpx.AsyncClient,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
) -> None:
    await _app_command(settings, "seed", "--merchants", "5", "--credit", "10.00", "--password", "p")
    pushed = await _app_command(settings, "tokens", "--count", "5", "--redis-key", "locust:tokens")
    assert pushed.returncode == 0, pushed.stderr
    tokens = [t.decode() for t in await redis.lrange("locust:tokens", 0, -1)]
    assert len(tokens) == 5
    usernames = [
        (await api.get("/api/v1/me", headers=bearer(t))).json()["username"] for t in tokens
    ]
    assert usernames == ["m1", "m2", "m3", "m4", "m5"]
    assert (await withdraw(api, tokens[0], "10.00")).status_code == 200
    await assert_books_balance(sessionmaker)


async def test_seed_reset_clears_earlier_merchants_and_their_money(
    api: httpx.AsyncClient,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
) -> None:
    await _app_command(settings, "seed", "--merchants", "3", "--credit", "10.00", "--password", "p")
    await _app_command(settings, "tokens", "--count", "1", "--redis-key", "t")
    token = (await redis.lindex("t", 0)).decode()
    assert (await withdraw(api, token, "4.00")).status_code == 200
    reset = await _app_command(
        settings, "seed", "--merchants", "2", "--credit", "7.00", "--password", "p", "--reset"
    )
    assert "merchants=2, credit/merchant=7.00, pool_available=70.00" in reset.stdout
    assert await count_rows(sessionmaker, Withdrawal) == 0
    assert await count_rows(sessionmaker, Merchant) == 2
    assert await count_rows(sessionmaker, LedgerEntry) == 2  # the new top-up only
    await assert_books_balance(sessionmaker)


async def test_seed_refuses_a_bad_credit(settings: Settings, clean_db: None) -> None:
    result = await _app_command(settings, "seed", "--credit", "1.001", "--password", "p")
    assert result.returncode == 2
    assert "--credit" in result.stdout
