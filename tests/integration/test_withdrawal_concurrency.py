"""Many withdrawals at once: the line and the pool are never overdrawn, nothing pays twice."""

import asyncio
from collections import Counter

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.api import admin_token, approved_merchant, bearer
from tests.support.money import assert_books_balance, bank_transfers, top_up, withdraw


@pytest.fixture
async def admin(api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]) -> str:
    return await admin_token(api, sessionmaker)


async def test_thirty_concurrent_withdrawals_on_a_ten_unit_line_pay_exactly_ten(
    api: httpx.AsyncClient, admin: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await top_up(api, admin, "1000.00")
    _, merchant = await approved_merchant(api, admin, credit_limit="10.00")
    responses = await asyncio.gather(*(withdraw(api, merchant, "1.00") for _ in range(30)))
    codes = Counter(r.json().get("code", r.json().get("status")) for r in responses)
    assert codes == {"SUCCESS": 10, "INSUFFICIENT_MERCHANT_CREDIT": 20}, codes
    assert await bank_transfers(sessionmaker) == {"PAID": 10}
    me = (await api.get("/api/v1/me", headers=bearer(merchant))).json()
    assert (me["utilized_amount"], me["available_credit"]) == ("10.00", "0.00")
    await assert_books_balance(sessionmaker)


async def test_pool_exhaustion_across_many_merchants(
    api: httpx.AsyncClient, admin: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await top_up(api, admin, "10.00")
    merchants = [(await approved_merchant(api, admin, credit_limit="100.00"))[1] for _ in range(6)]
    responses = await asyncio.gather(
        *(withdraw(api, token, "3.00") for token in merchants for _ in range(2))
    )
    codes = Counter(r.json().get("code", r.json().get("status")) for r in responses)
    assert codes == {"SUCCESS": 3, "INSUFFICIENT_POOL": 9}, codes
    pool = (await api.get("/api/v1/admin/pool", headers=bearer(admin))).json()
    assert (pool["available"], pool["paid_out"]) == ("1.00", "9.00")
    assert await bank_transfers(sessionmaker) == {"PAID": 3}
    await assert_books_balance(sessionmaker)


async def test_mixed_load_of_paid_refused_and_rejected_keeps_the_books(
    api: httpx.AsyncClient, admin: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await top_up(api, admin, "60.00")
    good = [(await approved_merchant(api, admin, credit_limit="20.00"))[1] for _ in range(3)]
    refused = (
        await approved_merchant(api, admin, credit_limit="20.00", bank_account="IRREJECT77")
    )[1]
    requests = [withdraw(api, token, "7.00") for token in [*good, refused] for _ in range(4)]
    responses = await asyncio.gather(*requests)
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 409, 422}
    paid = statuses[200]
    assert paid <= 6  # at most 2 per 20.00 line, and 60.00 of pool covers 8
    assert await bank_transfers(sessionmaker) == {"PAID": paid, "REFUSED": statuses[422]}
    await assert_books_balance(sessionmaker)
