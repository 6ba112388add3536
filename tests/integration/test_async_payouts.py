"""ASYNC_SETTLEMENT=1: 202 QUEUED at once, a real arq worker pays out, nothing lost or doubled."""

import asyncio
import signal
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.dev.embedded.process import free_port
from app.main import create_app
from app.models import Withdrawal, WithdrawalStatus
from app.settlement.main import create_app as create_settlement_app
from tests.conftest import _client_for
from tests.support.api import admin_token, approved_merchant, bearer
from tests.support.money import assert_books_balance, bank_transfers, top_up, withdraw
from tests.support.servers import serve
from tests.support.stack import settlement_settings
from tests.support.worker import running_worker

OPEN = (WithdrawalStatus.QUEUED, WithdrawalStatus.PROCESSING)


@pytest.fixture
def async_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"ASYNC_SETTLEMENT": True})


@pytest.fixture
async def async_api(
    async_settings: Settings, clean_db: None, redis: Redis
) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client_for(create_app(async_settings), "http://api.test"):
        yield client


async def _statuses(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(Withdrawal.status, func.count()).group_by(Withdrawal.status)
        )
        return {status: count for status, count in rows}


async def _wait_all_final(
    sessionmaker: async_sessionmaker[AsyncSession], within_s: float = 60
) -> dict[str, int]:
    for _ in range(int(within_s / 0.1)):
        statuses = await _statuses(sessionmaker)
        if not any(statuses.get(s) for s in OPEN):
            return statuses
        await asyncio.sleep(0.1)
    raise AssertionError(f"withdrawals still open: {await _statuses(sessionmaker)}")


async def _merchants(api: httpx.AsyncClient, sessionmaker: Any, count: int, **kw: Any) -> list[str]:
    admin = await admin_token(api, sessionmaker)
    await top_up(api, admin, "100000.00")
    return [(await approved_merchant(api, admin, **kw))[1] for _ in range(count)]


async def test_queued_withdrawal_is_paid_by_the_worker(
    async_api: httpx.AsyncClient, async_settings: Settings, sessionmaker: Any
) -> None:
    (merchant,) = await _merchants(async_api, sessionmaker, 1)
    accepted = await withdraw(async_api, merchant, "12.34", key="q1")
    assert accepted.status_code == 202
    assert accepted.json()["status"] == "QUEUED"
    with running_worker(async_settings):
        assert await _wait_all_final(sessionmaker) == {"SUCCESS": 1}
    withdrawal_id = accepted.json()["withdrawal_id"]
    fetched = await async_api.get(f"/api/v1/withdrawals/{withdrawal_id}", headers=bearer(merchant))
    assert fetched.json()["status"] == "SUCCESS"
    replay = await withdraw(async_api, merchant, "12.34", key="q1")
    assert (replay.status_code, replay.json()["status"]) == (200, "SUCCESS")
    assert await bank_transfers(sessionmaker) == {"PAID": 1}
    await assert_books_balance(sessionmaker)


async def test_refusal_is_released_at_once(
    async_api: httpx.AsyncClient, async_settings: Settings, sessionmaker: Any
) -> None:
    (merchant,) = await _merchants(async_api, sessionmaker, 1, bank_account="IRREJECT42")
    assert (await withdraw(async_api, merchant, "5.00")).status_code == 202
    with running_worker(async_settings):
        assert await _wait_all_final(sessionmaker) == {"FAILED": 1}
    me = (await async_api.get("/api/v1/me", headers=bearer(merchant))).json()
    assert me["utilized_amount"] == "0.00"
    assert "PAID" not in await bank_transfers(sessionmaker)
    await assert_books_balance(sessionmaker)


async def test_two_hundred_concurrent_withdrawals_all_finish_exactly_once(
    async_api: httpx.AsyncClient, async_settings: Settings, sessionmaker: Any
) -> None:
    merchants = await _merchants(async_api, sessionmaker, 20, credit_limit="100.00")
    with running_worker(async_settings):
        responses = await asyncio.gather(
            *(withdraw(async_api, token, "1.50") for token in merchants for _ in range(10))
        )
        assert {r.status_code for r in responses} == {202}
        assert await _wait_all_final(sessionmaker) == {"SUCCESS": 200}
    assert await bank_transfers(sessionmaker) == {"PAID": 200}
    await assert_books_balance(sessionmaker)


async def test_worker_killed_mid_job_then_a_new_worker_pays_each_once(
    async_api: httpx.AsyncClient, async_settings: Settings, sessionmaker: Any
) -> None:
    merchants = await _merchants(async_api, sessionmaker, 5)
    slow_bank = async_settings.model_copy(update={"BANK_LATENCY_MS": 800})
    async with serve(create_settlement_app(settlement_settings(slow_bank))) as slow_settlement:
        url = f"{slow_settlement}/api/settlement/withdraw"
        for token in merchants:
            assert (await withdraw(async_api, token, "7.00")).status_code == 202
        with running_worker(async_settings, SETTLEMENT_URL=url) as doomed:
            # Polls the database: the worker's state change is not an event we can await.
            while (await _statuses(sessionmaker)).get("PROCESSING", 0) == 0:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            doomed.send_signal(signal.SIGKILL)
            doomed.wait(timeout=10)
        with running_worker(async_settings, SETTLEMENT_URL=url):
            assert await _wait_all_final(sessionmaker) == {"SUCCESS": 5}
    assert await bank_transfers(sessionmaker) == {"PAID": 5}
    await assert_books_balance(sessionmaker)


async def test_redis_flushall_after_acceptance_is_recovered_by_the_sweeper(
    async_api: httpx.AsyncClient, async_settings: Settings, sessionmaker: Any, redis: Redis
) -> None:
    merchants = await _merchants(async_api, sessionmaker, 4)
    for token in merchants:
        for _ in range(3):
            assert (await withdraw(async_api, token, "2.00")).status_code == 202
    assert await redis.zcard("arq:queue") == 12
    await redis.flushall()  # every queued job is gone; only PostgreSQL remembers
    with running_worker(async_settings):
        assert await _wait_all_final(sessionmaker) == {"SUCCESS": 12}
    assert await bank_transfers(sessionmaker) == {"PAID": 12}
    await assert_books_balance(sessionmaker)


async def test_settlement_down_for_a_while_retries_then_succeeds(
    async_api: httpx.AsyncClient, async_settings: Settings, sessionmaker: Any
) -> None:
    (merchant,) = await _merchants(async_api, sessionmaker, 1)
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/settlement/withdraw"
    assert (await withdraw(async_api, merchant, "3.00")).status_code == 202
    with running_worker(async_settings, SETTLEMENT_URL=url):
        async with sessionmaker() as session:
            for _ in range(300):
                attempts = await session.scalar(select(Withdrawal.attempts))
                await session.rollback()
                if attempts and attempts >= 2:
                    break
                await asyncio.sleep(0.05)
        assert attempts is not None and attempts >= 2  # it retried while settlement was down
        assert await bank_transfers(sessionmaker) == {}
        async with serve(create_settlement_app(settlement_settings(async_settings)), port=port):
            assert await _wait_all_final(sessionmaker) == {"SUCCESS": 1}
    assert await bank_transfers(sessionmaker) == {"PAID": 1}
    await assert_books_balance(sessionmaker)
