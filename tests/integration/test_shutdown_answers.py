"""A withdrawal that meets a batcher closed by shutdown gets a documented answer, never a 500:
before its reservation, 503 SHUTTING_DOWN and nothing changed; after it, 202 PROCESSING with
the money reserved for the reconciler."""

import uuid
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.models import IdempotencyKey, Withdrawal
from app.withdrawals.money_path import MoneyPath
from app.withdrawals.reconcile import reconcile
from tests.support.api import admin_token, approved_merchant
from tests.support.money import assert_books_balance, count_rows, top_up, withdraw


@pytest.fixture
async def merchant(api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]) -> str:
    admin = await admin_token(api, sessionmaker)
    await top_up(api, admin, "100.00")
    return (await approved_merchant(api, admin, credit_limit="50.00"))[1]


async def test_a_closed_reserve_batcher_is_503_shutting_down_and_changes_nothing(
    api_app: FastAPI,
    api: httpx.AsyncClient,
    merchant: str,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await api_app.state.money.reserver.aclose()

    refused = await withdraw(api, merchant, "5.00")

    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "SHUTTING_DOWN"
    assert refused.headers["Retry-After"] == "1"
    assert await count_rows(sessionmaker, Withdrawal) == 0
    assert await count_rows(sessionmaker, IdempotencyKey) == 0
    await assert_books_balance(sessionmaker)


async def test_a_closed_settle_batcher_leaves_the_reserved_withdrawal_to_the_reconciler(
    api_app: FastAPI,
    api: httpx.AsyncClient,
    merchant: str,
    money: MoneyPath,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await api_app.state.settler.aclose()
    key = uuid.uuid4().hex

    accepted = await withdraw(api, merchant, "5.00", key=key)

    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["status"] == "PROCESSING"
    await assert_books_balance(sessionmaker)  # reserved, in flight
    report = await reconcile(
        money, http=api_app.state.http, settings=settings, older_than=timedelta(0)
    )
    assert report.outcomes == {"PAID": 1}
    replay = await withdraw(api, merchant, "5.00", key=key)
    assert replay.json()["status"] == "SUCCESS"
    await assert_books_balance(sessionmaker)
