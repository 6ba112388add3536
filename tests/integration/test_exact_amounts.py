"""Amounts are booked exactly as written, and the configured maximum holds."""

from decimal import Decimal

import httpx
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.main import create_app
from app.models import IdempotencyKey, Withdrawal
from tests.conftest import _client_for
from tests.support.api import admin_token, approved_merchant, bearer
from tests.support.money import assert_books_balance, count_rows, top_up, withdraw

# 2^53 / 100: as a float this is ...409.98 once printed; only an exact decode keeps the cent.
NEAR_FLOAT_LIMIT = b"90071992547409.99"


async def test_a_json_number_is_booked_as_the_exact_decimal_written(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    admin = await admin_token(api, sessionmaker)
    funded = await api.post(
        "/api/v1/admin/pool/topup",
        content=b'{"amount": ' + NEAR_FLOAT_LIMIT + b"}",
        headers=bearer(admin) | {"content-type": "application/json"},
    )
    assert funded.status_code == 200, funded.text
    assert funded.json() == {"pool_available": NEAR_FLOAT_LIMIT.decode()}
    _, merchant = await approved_merchant(api, admin, credit_limit=NEAR_FLOAT_LIMIT.decode())
    paid = await api.post(
        "/api/v1/withdrawals",
        content=b'{"amount": ' + NEAR_FLOAT_LIMIT + b"}",
        headers=bearer(merchant) | {"Idempotency-Key": "exact", "content-type": "application/json"},
    )
    assert paid.status_code == 200, paid.text
    assert paid.json()["amount"] == NEAR_FLOAT_LIMIT.decode()
    # The same number replays the same withdrawal (the fingerprint is of the exact amount).
    again = await withdraw(api, merchant, NEAR_FLOAT_LIMIT.decode(), key="exact")
    assert again.headers["idempotent-replayed"] == "true"
    await assert_books_balance(sessionmaker)


async def test_a_json_number_with_three_places_is_422(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    admin = await admin_token(api, sessionmaker)
    response = await api.post(
        "/api/v1/admin/pool/topup",
        content=b'{"amount": 10.500}',
        headers=bearer(admin) | {"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "VALIDATION_ERROR"


async def test_a_withdrawal_above_the_configured_maximum_is_422_and_stores_nothing(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    clean_db: None,
    redis: Redis,
) -> None:
    capped = settings.model_copy(update={"MAX_WITHDRAWAL_AMOUNT": Decimal("50")})
    async for api in _client_for(create_app(capped), "http://api.test"):
        admin = await admin_token(api, sessionmaker)
        await top_up(api, admin, "100.00")
        _, merchant = await approved_merchant(api, admin)
        over = await withdraw(api, merchant, "50.01", key="big")
        assert over.status_code == 422
        assert over.headers["content-type"] == "application/problem+json"
        assert over.json()["code"] == "AMOUNT_ABOVE_MAXIMUM"
        assert over.json()["max_amount"] == "50.00"
        assert await count_rows(sessionmaker, Withdrawal) == 0
        assert await count_rows(sessionmaker, IdempotencyKey) == 0
        # At the maximum it is paid, with the same key: the refusal stored nothing.
        assert (await withdraw(api, merchant, "50.00", key="big")).status_code == 200
    async with sessionmaker() as session:
        assert (await session.scalars(select(Withdrawal.amount))).all() == [50]
    await assert_books_balance(sessionmaker)
