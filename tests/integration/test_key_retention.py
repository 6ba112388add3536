"""Idempotency keys are kept for their retention, then purged by the worker's cron job."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.models import IdempotencyKey
from tests.support.api import admin_token, approved_merchant
from tests.support.money import assert_books_balance, top_up, withdraw
from workers.jobs import purge_idempotency_keys


async def test_purge_forgets_completed_keys_past_retention_and_keeps_the_rest(
    api: httpx.AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    admin = await admin_token(api, sessionmaker)
    await top_up(api, admin, "100.00")
    _, merchant = await approved_merchant(api, admin)
    for key in ("old", "fresh"):
        assert (await withdraw(api, merchant, "1.00", key=key)).status_code == 200
    async with sessionmaker() as session, session.begin():
        expired = datetime.now(UTC) - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS, minutes=1)
        await session.execute(
            text("UPDATE idempotency_keys SET created_at = :at WHERE key = 'old'"), {"at": expired}
        )
        # A claim whose request is still running (no stored answer) is never purged.
        await session.execute(
            text(
                "INSERT INTO idempotency_keys (merchant_id, key, request_hash, created_at) "
                "SELECT merchant_id, 'running', 'h', :at FROM idempotency_keys WHERE key = 'old'"
            ),
            {"at": expired},
        )
    ctx: dict[str, Any] = {"settings": settings, "sessionmaker": sessionmaker}
    assert await purge_idempotency_keys(ctx) == 1
    async with sessionmaker() as session:
        keys = set((await session.scalars(select(IdempotencyKey.key))).all())
    assert keys == {"fresh", "running"}
    # The purged key still cannot make a second withdrawal: the withdrawal keeps it.
    reused = await withdraw(api, merchant, "1.00", key="old")
    assert reused.status_code == 422
    assert reused.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    await assert_books_balance(sessionmaker)
