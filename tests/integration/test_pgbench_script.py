"""bench/pgbench.py's reservation runs against the current schema and reserves correctly."""

from decimal import Decimal

import asyncpg
import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import MerchantCredit
from bench.pgbench import AMOUNT, RESERVE_SCRIPT
from tests.support.api import admin_token, approved_merchant
from tests.support.money import assert_books_balance, top_up


async def test_the_pgbench_reservation_reserves_on_the_current_function(
    api: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    db_pool: asyncpg.Pool,
) -> None:
    admin = await admin_token(api, sessionmaker)
    await top_up(api, admin, "100.00")
    merchant_id, _ = await approved_merchant(api, admin)
    statement = RESERVE_SCRIPT.split("\n", 1)[1].replace(":mid", str(merchant_id))
    statement = statement.replace(":amount", AMOUNT)
    record = await db_pool.fetchrow(statement)
    assert record is not None and record["outcome"] == "RESERVED"
    async with sessionmaker() as session:
        utilized = await session.scalar(
            select(MerchantCredit.utilized_amount).where(MerchantCredit.merchant_id == merchant_id)
        )
    assert utilized == Decimal(AMOUNT)
    await assert_books_balance(sessionmaker)
