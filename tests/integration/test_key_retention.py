"""Idempotency keys are kept for their retention after the work is final, then purged in
batches by the worker's cron job; a withdrawal outlives its key and still answers for it."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.main import create_app
from app.models import IdempotencyKey
from tests.conftest import _client_for
from tests.support.api import admin_token, approved_merchant
from tests.support.money import assert_books_balance, top_up, withdraw
from workers.jobs import purge_idempotency_keys


async def _expire(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, *keys: str
) -> None:
    expired = datetime.now(UTC) - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS, minutes=1)
    async with sessionmaker() as session, session.begin():
        await session.execute(
            text(
                "UPDATE idempotency_keys SET created_at = :at, completed_at = :at "
                "WHERE key = ANY(:keys)"
            ),
            {"at": expired, "keys": list(keys)},
        )


async def _keys(sessionmaker: async_sessionmaker[AsyncSession]) -> set[str]:
    async with sessionmaker() as session:
        return set((await session.scalars(select(IdempotencyKey.key))).all())


async def test_purge_forgets_only_final_keys_past_retention_in_batches(
    api: httpx.AsyncClient,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
) -> None:
    admin = await admin_token(api, sessionmaker)
    await top_up(api, admin, "100.00")
    _, merchant = await approved_merchant(api, admin, credit_limit="10.00")
    for key in ("paid", "fresh"):
        assert (await withdraw(api, merchant, "1.00", key=key)).status_code == 200
    assert (await withdraw(api, merchant, "50.00", key="refused")).status_code == 409
    # Async mode with no worker: the withdrawal stays QUEUED, its key holds the 202.
    queued_settings = settings.model_copy(update={"ASYNC_SETTLEMENT": True})
    async for queued_api in _client_for(create_app(queued_settings), "http://queued"):
        assert (await withdraw(queued_api, merchant, "1.00", key="open")).status_code == 202
    async with sessionmaker() as session, session.begin():
        # A claim whose request is still running (no stored answer) is never purged.
        await session.execute(
            text(
                "INSERT INTO idempotency_keys (merchant_id, key, request_hash) "
                "SELECT merchant_id, 'running', 'h' FROM idempotency_keys WHERE key = 'paid'"
            )
        )
    await _expire(sessionmaker, settings, "paid", "refused", "open", "running")
    ctx: dict[str, Any] = {"settings": settings, "sessionmaker": sessionmaker}
    # Batches of one: the job loops until a batch comes back short.
    assert await purge_idempotency_keys(ctx, batch=1) == 2
    assert await _keys(sessionmaker) == {"fresh", "open", "running"}
    # The open withdrawal's key still replays its 202 with the withdrawal id.
    async for queued_api in _client_for(create_app(queued_settings), "http://queued"):
        replay = await withdraw(queued_api, merchant, "1.00", key="open")
    assert replay.status_code == 202
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["status"] == "QUEUED"


async def test_key_past_retention_replays_its_withdrawal_or_refuses_another_amount(
    api: httpx.AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    admin = await admin_token(api, sessionmaker)
    await top_up(api, admin, "100.00")
    _, merchant = await approved_merchant(api, admin)
    first = await withdraw(api, merchant, "1.00", key="old")
    assert first.status_code == 200
    await _expire(sessionmaker, settings, "old")
    ctx: dict[str, Any] = {"settings": settings, "sessionmaker": sessionmaker}
    assert await purge_idempotency_keys(ctx) == 1
    # The same body: the withdrawal that carries the key answers, as its key would have.
    again = await withdraw(api, merchant, "1.00", key="old")
    assert again.status_code == 200, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    # Another amount: refused, naming the withdrawal; never a second withdrawal.
    reused = await withdraw(api, merchant, "2.00", key="old")
    assert reused.status_code == 422
    assert reused.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert reused.json()["withdrawal_id"] == first.json()["withdrawal_id"]
    assert await _keys(sessionmaker) == set()
    await assert_books_balance(sessionmaker)
