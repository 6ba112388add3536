"""Idempotency-Key: per merchant, replayed, refused for another body, 202 with the withdrawal
id while its payout is in flight."""

import asyncio
from collections import Counter

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.main import create_app
from app.models import IdempotencyKey, Withdrawal
from app.settlement.main import create_app as create_settlement_app
from tests.conftest import _client_for
from tests.support.api import admin_token, approved_merchant, bearer
from tests.support.money import (
    assert_books_balance,
    bank_transfers,
    count_rows,
    top_up,
    withdraw,
)
from tests.support.servers import serve
from tests.support.stack import settlement_settings


@pytest.fixture
async def admin(api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]) -> str:
    token = await admin_token(api, sessionmaker)
    await top_up(api, token, "1000.00")
    return token


async def test_second_request_with_same_key_replays_first_response(
    api: httpx.AsyncClient, admin: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    _, merchant = await approved_merchant(api, admin)
    first = await withdraw(api, merchant, "12.00", key="order-1")
    again = await withdraw(api, merchant, 12, key="order-1")  # the same amount, as a number
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await bank_transfers(sessionmaker) == {"PAID": 1}
    await assert_books_balance(sessionmaker)


async def test_same_key_with_another_body_is_422(
    api: httpx.AsyncClient, admin: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    _, merchant = await approved_merchant(api, admin)
    assert (await withdraw(api, merchant, "5.00", key="k")).status_code == 200
    reused = await withdraw(api, merchant, "6.00", key="k")
    assert reused.status_code == 422
    assert reused.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert await count_rows(sessionmaker, Withdrawal) == 1
    await assert_books_balance(sessionmaker)


async def test_same_key_from_two_merchants_makes_two_withdrawals(
    api: httpx.AsyncClient, admin: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    _, alice = await approved_merchant(api, admin)
    _, bob = await approved_merchant(api, admin)
    a = await withdraw(api, alice, "3.00", key="shared")
    b = await withdraw(api, bob, "3.00", key="shared")
    assert a.status_code == b.status_code == 200
    assert a.json()["withdrawal_id"] != b.json()["withdrawal_id"]
    assert "idempotent-replayed" not in b.headers
    assert await bank_transfers(sessionmaker) == {"PAID": 2}
    await assert_books_balance(sessionmaker)


async def test_twenty_concurrent_requests_with_one_key_pay_once(
    api: httpx.AsyncClient, admin: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    _, merchant = await approved_merchant(api, admin)
    responses = await asyncio.gather(
        *(withdraw(api, merchant, "2.00", key="same") for _ in range(20))
    )
    outcomes = Counter(
        "replay" if r.headers.get("idempotent-replayed") else r.json().get("code", r.status_code)
        for r in responses
    )
    assert outcomes[200] == 1, outcomes
    # The key holds the 202 from transaction 1 on: the others replay it or the final 200.
    assert set(outcomes) <= {200, "replay"}, outcomes
    assert await count_rows(sessionmaker, Withdrawal) == 1
    assert await bank_transfers(sessionmaker) == {"PAID": 1}
    ids = {r.json()["withdrawal_id"] for r in responses if r.status_code == 200}
    assert len(ids) == 1
    await assert_books_balance(sessionmaker)


async def test_replay_while_the_payout_is_in_flight_learns_the_withdrawal_id(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], clean_db: None
) -> None:
    # Transaction 1 committed, transaction 2 not yet (as after a crash between them): the
    # key answers 202 with the withdrawal id, in sync mode too, instead of 409 in use.
    slow_bank = settings.model_copy(update={"BANK_LATENCY_MS": 1000})
    async with serve(create_settlement_app(settlement_settings(slow_bank))) as slow_settlement:
        slow = settings.model_copy(
            update={"SETTLEMENT_URL": f"{slow_settlement}/api/settlement/withdraw"}
        )
        async for api in _client_for(create_app(slow), "http://api.test"):
            admin = await admin_token(api, sessionmaker)
            await top_up(api, admin, "100.00")
            _, merchant = await approved_merchant(api, admin)
            first = asyncio.create_task(withdraw(api, merchant, "4.00", key="in-flight"))
            for _ in range(500):  # until transaction 1 has committed
                if await count_rows(sessionmaker, Withdrawal):
                    break
                await asyncio.sleep(0.01)
            replay = await withdraw(api, merchant, "4.00", key="in-flight")
            paid = await first
    assert replay.status_code == 202, replay.text
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == {"withdrawal_id": paid.json()["withdrawal_id"], "status": "PROCESSING"}
    assert paid.status_code == 200
    assert await bank_transfers(sessionmaker) == {"PAID": 1}
    await assert_books_balance(sessionmaker)


async def test_insufficient_credit_outcome_is_stored_and_replayed(
    api: httpx.AsyncClient, admin: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    merchant_id, merchant = await approved_merchant(api, admin, credit_limit="5.00")
    first = await withdraw(api, merchant, "9.00", key="too-much")
    assert first.json()["code"] == "INSUFFICIENT_MERCHANT_CREDIT"
    # Raising the limit does not change the answer for the same key: the outcome was final.
    await api.post(
        "/api/v1/admin/approve",
        json={"merchant_id": merchant_id, "credit_limit": "50.00"},
        headers=bearer(admin),
    )
    again = await withdraw(api, merchant, "9.00", key="too-much")
    assert again.status_code == 409
    assert again.headers["idempotent-replayed"] == "true"
    assert (await withdraw(api, merchant, "9.00", key="new-key")).status_code == 200


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "IDEMPOTENCY_KEY_REQUIRED"),
        ({"Idempotency-Key": ""}, "IDEMPOTENCY_KEY_REQUIRED"),
        ({"Idempotency-Key": "x" * 256}, "IDEMPOTENCY_KEY_INVALID"),
    ],
)
async def test_missing_or_bad_key_is_400_and_stores_nothing(
    api: httpx.AsyncClient,
    admin: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    headers: dict[str, str],
    code: str,
) -> None:
    _, merchant = await approved_merchant(api, admin)
    response = await api.post(
        "/api/v1/withdrawals", json={"amount": "1.00"}, headers=bearer(merchant) | headers
    )
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert await count_rows(sessionmaker, IdempotencyKey) == 0
    assert await count_rows(sessionmaker, Withdrawal) == 0


async def test_key_of_255_characters_is_accepted(api: httpx.AsyncClient, admin: str) -> None:
    _, merchant = await approved_merchant(api, admin)
    assert (await withdraw(api, merchant, "1.00", key="k" * 255)).status_code == 200


async def test_rejected_requests_store_no_key(
    api: httpx.AsyncClient, admin: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    _, merchant = await approved_merchant(api, admin)
    assert (await withdraw(api, merchant, "1.001", key="bad-body")).status_code == 422
    unauthenticated = await api.post(
        "/api/v1/withdrawals", json={"amount": "1.00"}, headers={"Idempotency-Key": "no-auth"}
    )
    assert unauthenticated.status_code == 401
    async with sessionmaker() as session:
        assert (await session.scalars(select(IdempotencyKey.key))).all() == []
    # The key is still free for a valid request.
    assert (await withdraw(api, merchant, "1.00", key="bad-body")).status_code == 200
