"""Top-ups: once per Idempotency-Key and per funding reference, concurrency-safe, and never
past what the pool's NUMERIC(18, 2) column can hold."""

import asyncio
from decimal import Decimal

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.ledger import repository
from app.main import create_app
from app.models import LedgerEntry, PoolTopUp
from app.money import COLUMN_MAX
from tests.conftest import _client_for
from tests.support.api import admin_token, approved_merchant, bearer
from tests.support.money import assert_books_balance, count_rows, withdraw

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def admin(api: httpx.AsyncClient, sessionmaker: Sessions) -> str:
    return await admin_token(api, sessionmaker)


async def _top_up(
    api: httpx.AsyncClient, admin: str, body: dict[str, object], key: str | None = None
) -> httpx.Response:
    headers = bearer(admin) | ({"Idempotency-Key": key} if key else {})
    return await api.post("/api/v1/admin/pool/topup", json=body, headers=headers)


async def _pool(sessionmaker: Sessions) -> Decimal:
    async with sessionmaker() as session:
        return await repository.pool_available(session)


async def test_same_key_tops_up_once_and_replays_its_answer(
    api: httpx.AsyncClient, admin: str, sessionmaker: Sessions
) -> None:
    first = await _top_up(api, admin, {"amount": "100.00"}, key="fund-1")
    again = await _top_up(api, admin, {"amount": 100}, key="fund-1")  # the same body
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() == {"pool_available": "100.00"}
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await _pool(sessionmaker) == Decimal("100.00")
    assert await count_rows(sessionmaker, LedgerEntry) == 2
    await assert_books_balance(sessionmaker)


async def test_same_key_with_another_body_is_422_and_moves_nothing(
    api: httpx.AsyncClient, admin: str, sessionmaker: Sessions
) -> None:
    assert (await _top_up(api, admin, {"amount": "10.00"}, key="fund-2")).status_code == 200
    reused = await _top_up(api, admin, {"amount": "20.00"}, key="fund-2")
    assert reused.status_code == 422
    assert reused.headers["content-type"] == "application/problem+json"
    assert reused.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert await _pool(sessionmaker) == Decimal("10.00")


async def test_top_ups_without_a_key_each_fund_the_pool(
    api: httpx.AsyncClient, admin: str, sessionmaker: Sessions
) -> None:
    for _ in range(2):
        assert (await _top_up(api, admin, {"amount": "5.00"})).status_code == 200
    assert await _pool(sessionmaker) == Decimal("10.00")
    assert await count_rows(sessionmaker, PoolTopUp) == 2
    await assert_books_balance(sessionmaker)


async def test_a_reference_funds_one_top_up_and_a_second_is_409(
    api: httpx.AsyncClient, admin: str, sessionmaker: Sessions
) -> None:
    body = {"amount": "50.00", "reference": "wire-2026-001"}
    first = await _top_up(api, admin, body)
    assert first.status_code == 200
    second = await _top_up(api, admin, body, key="another-key")
    assert second.status_code == 409
    assert second.json()["code"] == "TOPUP_REFERENCE_USED"
    assert "wire-2026-001" in second.json()["detail"]
    assert await _pool(sessionmaker) == Decimal("50.00")
    await assert_books_balance(sessionmaker)


async def test_concurrent_top_ups_with_one_key_fund_the_pool_once(
    api: httpx.AsyncClient, admin: str, sessionmaker: Sessions
) -> None:
    # Each request has its own session and connection: the key's unique index serialises them.
    responses = await asyncio.gather(
        *(_top_up(api, admin, {"amount": "30.00"}, key="race") for _ in range(8))
    )
    assert [r.status_code for r in responses] == [200] * 8
    assert {r.json()["pool_available"] for r in responses} == {"30.00"}
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 7
    assert await _pool(sessionmaker) == Decimal("30.00")
    assert await count_rows(sessionmaker, PoolTopUp) == 1
    await assert_books_balance(sessionmaker)


async def test_a_top_up_past_the_columns_range_is_422_never_500(
    api: httpx.AsyncClient, admin: str, sessionmaker: Sessions
) -> None:
    for _ in range(9):  # 9 * 10^15, each the largest amount there is
        assert (await _top_up(api, admin, {"amount": "1000000000000000"})).status_code == 200
    to_the_brim = await _top_up(api, admin, {"amount": "999999999999999.99"})
    assert to_the_brim.json() == {"pool_available": f"{COLUMN_MAX}"}
    over = await _top_up(api, admin, {"amount": "0.01"}, key="one-cent-too-many")
    assert over.status_code == 422, over.text
    assert over.json()["code"] == "POOL_LIMIT_EXCEEDED"
    assert await _pool(sessionmaker) == COLUMN_MAX
    await assert_books_balance(sessionmaker)


async def test_money_in_flight_counts_toward_the_pools_limit(
    api: httpx.AsyncClient, admin: str, sessionmaker: Sessions, settings: Settings
) -> None:
    # A release gives in-flight money back to the pool, so pool + in flight must fit.
    assert (await _top_up(api, admin, {"amount": "100.00"})).status_code == 200
    _, merchant = await approved_merchant(api, admin)
    queued = settings.model_copy(update={"ASYNC_SETTLEMENT": True})  # no worker: stays QUEUED
    async for queued_api in _client_for(create_app(queued), "http://queued"):
        assert (await withdraw(queued_api, merchant, "60.00")).status_code == 202
    for _ in range(9):
        assert (await _top_up(api, admin, {"amount": "1000000000000000"})).status_code == 200
    # Pool + in flight now reach the limit exactly.
    assert (await _top_up(api, admin, {"amount": "999999999999899.99"})).status_code == 200
    assert await _pool(sessionmaker) == COLUMN_MAX - Decimal("60.00")
    over = await _top_up(api, admin, {"amount": "0.01"})
    assert over.status_code == 422, over.text
    assert over.json()["code"] == "POOL_LIMIT_EXCEEDED"
    assert await _pool(sessionmaker) == COLUMN_MAX - Decimal("60.00")
    await assert_books_balance(sessionmaker)
