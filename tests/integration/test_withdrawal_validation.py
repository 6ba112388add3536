"""Bad input gets a clear 4xx problem and moves nothing."""

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import IdempotencyKey, LedgerEntry, Withdrawal
from tests.support.api import admin_token, approved_merchant, bearer
from tests.support.money import assert_books_balance, count_rows, top_up

BAD_AMOUNTS = [
    "-1",
    "0",
    "1.001",
    "NaN",
    "Infinity",
    "1e400",
    "1,00",
    "",
    None,
    True,
    False,
    [1],
    {"v": 1},
    "1000000000000000.01",
    -1,
    0,
    0.001,
]


@pytest.fixture
async def merchant(api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]) -> str:
    admin = await admin_token(api, sessionmaker)
    await top_up(api, admin, "100.00")
    return (await approved_merchant(api, admin))[1]


async def _nothing_moved(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    assert await count_rows(sessionmaker, Withdrawal) == 0
    assert await count_rows(sessionmaker, IdempotencyKey) == 0
    assert await count_rows(sessionmaker, LedgerEntry) == 2  # the top-up only
    await assert_books_balance(sessionmaker)


@pytest.mark.parametrize("amount", BAD_AMOUNTS)
async def test_every_bad_amount_is_422_and_moves_nothing(
    api: httpx.AsyncClient,
    merchant: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    amount: object,
) -> None:
    response = await api.post(
        "/api/v1/withdrawals",
        json={"amount": amount},
        headers=bearer(merchant) | {"Idempotency-Key": "k1"},
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "VALIDATION_ERROR"
    await _nothing_moved(sessionmaker)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{",
        b"[]",
        b"null",
        b'{"amount": "1.00", "extra": 1}',
        b"{}",
        b'{"amount": 1e400}',
        b'{"amount": NaN}',
        b'{"amount": "1.00"',
        b"\x00\x01",
        b'{"amount": "1.00"}' + b" " * 10,
    ],
)
async def test_malformed_bodies_are_4xx_never_500(
    api: httpx.AsyncClient,
    merchant: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    content: bytes,
) -> None:
    response = await api.post(
        "/api/v1/withdrawals",
        content=content,
        headers=bearer(merchant) | {"Idempotency-Key": "k2", "content-type": "application/json"},
    )
    if content.startswith(b'{"amount": "1.00"}'):
        assert response.status_code == 200  # trailing whitespace is valid JSON
        return
    assert response.status_code == 422, (content, response.text)
    await _nothing_moved(sessionmaker)


async def test_body_over_64_kib_is_413_and_moves_nothing(
    api: httpx.AsyncClient, merchant: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    padding = "x" * (64 * 1024)
    response = await api.post(
        "/api/v1/withdrawals",
        content=f'{{"amount": "1.00", "note": "{padding}"}}'.encode(),
        headers=bearer(merchant) | {"Idempotency-Key": "k3", "content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"
    await _nothing_moved(sessionmaker)


async def test_malformed_withdrawal_id_and_cursor_are_422(
    api: httpx.AsyncClient, merchant: str
) -> None:
    assert (
        await api.get("/api/v1/withdrawals/not-a-uuid", headers=bearer(merchant))
    ).status_code == 422
    for cursor in ("garbage", "WyJ4IiwieSJd", "WzEsMl0"):
        response = await api.get(
            "/api/v1/withdrawals", params={"cursor": cursor}, headers=bearer(merchant)
        )
        assert response.status_code == 422, cursor
        assert response.json()["code"] == "INVALID_CURSOR"
