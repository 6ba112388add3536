"""Property: random withdrawal sequences get the same answers and leave the same books,
whether they run one at a time or concurrently through the reserve batcher."""

import asyncio

from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.batching import Batcher
from app.withdrawals.reserve import reserve_batch
from tests.conftest import empty_database
from tests.integration.test_batched_reserve import (
    books,
    describe,
    one_at_a_time,
    request,
    seed,
)
from tests.support.money import assert_books_balance

_MERCHANTS = ["a", "b", "c", "d", "s"]
_AMOUNTS = ["1.00", "5.00", "10.00", "15.00", "50.00", "300.00"]
_KEYS = ["k0", "k1", "k2", "k3", "done"]
_sequences = st.lists(
    st.tuples(st.sampled_from(_MERCHANTS), st.sampled_from(_AMOUNTS), st.sampled_from(_KEYS)),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=_sequences)
async def test_batched_and_one_at_a_time_runs_agree(
    engine: AsyncEngine,
    owner_engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    shared_settlement_app: FastAPI,
    clean_db: None,
    sequence: list[tuple[str, str, str]],
) -> None:
    await empty_database(owner_engine, shared_settlement_app)
    ids = await seed(sessionmaker)
    requests = [
        request(ids[merchant], amount, key, index)
        for index, (merchant, amount, key) in enumerate(sequence)
    ]
    single = [describe(r) for r in await one_at_a_time(engine, requests)]
    single_books = await books(engine)

    await empty_database(owner_engine, shared_settlement_app)
    await seed(sessionmaker)
    batcher = Batcher("reserve-property", lambda items: reserve_batch(engine, items), max_size=8)
    answers = await asyncio.gather(*(batcher.submit(r) for r in requests), return_exceptions=True)
    await batcher.aclose()
    assert [describe(r) for r in answers] == single
    assert await books(engine) == single_books
    await assert_books_balance(sessionmaker)
