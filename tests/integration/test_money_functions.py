"""The migrated money functions (creditpool_reserve / creditpool_finish) as PostgreSQL runs them:
the order they take their locks in, the ledger moves they write, the arguments they refuse and
the tables they resolve, whatever the caller's search_path.

Lock order is observed, not read from the migration: one connection holds a row, the function
runs on a second and waits for it, and a third probes (NOWAIT, lock_timeout, pg_locks) which
rows the waiting function already holds.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import create_statement_pool
from app.ledger.service import WITHDRAWAL_MOVES
from app.models import WithdrawalStatus
from app.withdrawals import statements
from tests.support.factories import MerchantRecord, create_merchant, fund_pool

pytestmark = pytest.mark.usefixtures("clean_db")


@pytest.fixture
async def connections(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """A pool of its own: these tests change session settings and leave temp tables."""
    pool = await create_statement_pool(settings, size=3)
    yield pool
    await pool.close()


@pytest.fixture
async def merchant(sessionmaker: async_sessionmaker[AsyncSession]) -> MerchantRecord:
    async with sessionmaker() as session, session.begin():
        await fund_pool(session, "100.00")
        return await create_merchant(session, credit_limit=Decimal("50.00"))


class _Pinned:
    """A pool stand-in that always lends one connection: reserve() acquires its own, and
    these tests choose which connection (and so which session settings) it runs on."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        yield self._conn


async def _reserve(db: Any, merchant: MerchantRecord, **changes: Any) -> statements.Reservation:
    arguments: dict[str, Any] = {
        "merchant_id": merchant.id,
        "key": uuid.uuid4().hex,
        "request_hash": "hash",
        "amount": Decimal("10.00"),
        "status": WithdrawalStatus.PROCESSING,
        "withdrawal_id": uuid.uuid4(),
        "reserve_tx_id": uuid.uuid4(),
        "pending_body": None,
        "credit_refusal_body": {"code": "INSUFFICIENT_MERCHANT_CREDIT"},
        "pool_refusal_body": {"code": "INSUFFICIENT_POOL"},
    }
    if not isinstance(db, asyncpg.Pool):
        db = _Pinned(db)
    return await statements.reserve(db, **(arguments | changes))


async def _finish(db: Any, withdrawal_id: uuid.UUID, status: str, **changes: Any) -> Any:
    arguments: dict[str, Any] = {
        "withdrawal_id": withdrawal_id,
        "status": status,
        "final_tx_id": uuid.uuid4(),
        "response_status": 200,
        "response_body": {"status": status},
        "bank_reference": "BNK-1" if status == WithdrawalStatus.SUCCESS else None,
        "failure_code": "ACCOUNT_REJECTED" if status == WithdrawalStatus.FAILED else None,
    }
    return await statements.finish(db, **(arguments | changes))


async def _blocked_by(probe: asyncpg.Connection, waiter: int, holder: int) -> None:
    """Wait until the backend `waiter` is waiting for a lock that `holder` holds."""
    for _ in range(500):
        if holder in await probe.fetchval("SELECT pg_blocking_pids($1)", waiter):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"backend {waiter} never waited for {holder}")


async def _locked(probe: asyncpg.Connection, sql: str, *args: Any) -> bool:
    """Whether another transaction holds the row `sql` (a SELECT ... FOR UPDATE) locks."""
    try:
        async with probe.transaction():
            await probe.execute("SET LOCAL lock_timeout = '50ms'")
            await probe.execute(sql, *args)
    except asyncpg.LockNotAvailableError:
        return True
    return False


_POOL_ROW = "SELECT 1 FROM credit_pool WHERE id = 1 FOR UPDATE"
_LINE = "SELECT 1 FROM merchant_credits WHERE merchant_id = $1 FOR UPDATE"
_KEY = "SELECT 1 FROM idempotency_keys WHERE merchant_id = $1 AND key = $2 FOR UPDATE"
_WITHDRAWAL = "SELECT 1 FROM withdrawals WHERE id = $1 FOR UPDATE"


async def _relation_locks(probe: asyncpg.Connection, pid: int) -> set[str]:
    rows = await probe.fetch(
        "SELECT relation::regclass::text AS name FROM pg_locks"
        " WHERE pid = $1 AND locktype = 'relation' AND granted AND mode = 'RowExclusiveLock'",
        pid,
    )
    return {row["name"] for row in rows}


async def test_reserve_takes_the_key_then_the_line_and_the_pool_row_last(
    connections: asyncpg.Pool, merchant: MerchantRecord
) -> None:
    async with (
        connections.acquire() as holder,
        connections.acquire() as runner,
        connections.acquire() as probe,
    ):
        key = uuid.uuid4().hex
        async with holder.transaction():
            await holder.execute(_POOL_ROW)
            reserving = asyncio.create_task(_reserve(runner, merchant, key=key))
            await _blocked_by(probe, runner.get_server_pid(), holder.get_server_pid())
            # Waiting for the pool row, it already holds the key and the merchant's line, and
            # has written the withdrawal, its line update and its ledger entries.
            assert await _locked(probe, _LINE, merchant.id)
            with pytest.raises(asyncpg.LockNotAvailableError):
                async with probe.transaction():
                    await probe.execute("SET LOCAL lock_timeout = '50ms'")
                    await probe.execute(
                        "INSERT INTO idempotency_keys (merchant_id, key, request_hash)"
                        " VALUES ($1, $2, 'other')",
                        merchant.id,
                        key,
                    )
            assert {
                "idempotency_keys",
                "merchant_credits",
                "withdrawals",
                "ledger_entries",
                "credit_pool",
            } <= await _relation_locks(probe, runner.get_server_pid())
        reserved = await reserving
    assert reserved.outcome == "RESERVED"


async def test_reserve_waiting_for_the_line_does_not_hold_the_pool_row(
    connections: asyncpg.Pool, merchant: MerchantRecord
) -> None:
    async with (
        connections.acquire() as holder,
        connections.acquire() as runner,
        connections.acquire() as probe,
    ):
        async with holder.transaction():
            await holder.execute(_LINE, merchant.id)
            reserving = asyncio.create_task(_reserve(runner, merchant))
            await _blocked_by(probe, runner.get_server_pid(), holder.get_server_pid())
            assert not await _locked(probe, _POOL_ROW)
            assert "credit_pool" not in await _relation_locks(probe, runner.get_server_pid())
        assert (await reserving).outcome == "RESERVED"


async def test_release_takes_withdrawal_key_and_line_before_the_pool_row(
    connections: asyncpg.Pool, merchant: MerchantRecord
) -> None:
    reserved = await _reserve(connections, merchant, key="release")
    assert reserved.withdrawal is not None
    withdrawal_id = reserved.withdrawal.id
    async with (
        connections.acquire() as holder,
        connections.acquire() as runner,
        connections.acquire() as probe,
    ):
        async with holder.transaction():
            await holder.execute(_POOL_ROW)
            finishing = asyncio.create_task(_finish(runner, withdrawal_id, "FAILED"))
            await _blocked_by(probe, runner.get_server_pid(), holder.get_server_pid())
            assert await _locked(probe, _WITHDRAWAL, withdrawal_id)
            assert await _locked(probe, _KEY, merchant.id, "release")
            assert await _locked(probe, _LINE, merchant.id)
        assert (await finishing).finished


async def test_settle_never_touches_the_pool_row(
    connections: asyncpg.Pool, merchant: MerchantRecord
) -> None:
    reserved = await _reserve(connections, merchant)
    assert reserved.withdrawal is not None
    async with connections.acquire() as holder, connections.acquire() as runner:
        async with holder.transaction():
            await holder.execute(_POOL_ROW)
            # Were the pool row on its way, this would fail at once with lock_not_available.
            await runner.execute("SET lock_timeout = '50ms'")
            done = await _finish(runner, reserved.withdrawal.id, "SUCCESS")
    assert done.finished


async def test_the_functions_write_the_moves_the_ledger_defines(
    connections: asyncpg.Pool, merchant: MerchantRecord
) -> None:
    paid = await _reserve(connections, merchant, amount=Decimal("10.00"))
    refused = await _reserve(connections, merchant, amount=Decimal("20.00"))
    assert paid.withdrawal is not None and refused.withdrawal is not None
    await _finish(connections, paid.withdrawal.id, "SUCCESS")
    await _finish(connections, refused.withdrawal.id, "FAILED")

    rows = await connections.fetch(
        "SELECT withdrawal_id, kind, account, amount FROM ledger_entries"
        " WHERE withdrawal_id IS NOT NULL"
    )
    written = {(r["withdrawal_id"], r["kind"], r["account"], r["amount"]) for r in rows}
    expected = set()
    for withdrawal, kinds in (
        (paid.withdrawal, ("RESERVE", "SETTLE")),
        (refused.withdrawal, ("RESERVE", "RELEASE")),
    ):
        for kind in kinds:
            debit, credit = WITHDRAWAL_MOVES[kind]  # type: ignore[index]
            expected |= {
                (withdrawal.id, kind, debit, -withdrawal.amount),
                (withdrawal.id, kind, credit, withdrawal.amount),
            }
    assert written == expected


@pytest.mark.parametrize(
    "changes",
    [
        {"status": "SUCCESS"},
        {"status": "BOGUS"},
        {"amount": Decimal("0.00")},
        {"amount": Decimal("-5.00")},
        {"amount": Decimal("1.005")},  # NUMERIC(18,2) would book 1.01 while the pool lost 1.005
    ],
    ids=["final_status", "unknown_status", "zero", "negative", "three_places"],
)
async def test_reserve_refuses_arguments_that_would_move_money_wrongly(
    connections: asyncpg.Pool, merchant: MerchantRecord, changes: dict[str, Any]
) -> None:
    with pytest.raises(asyncpg.InvalidParameterValueError, match="creditpool_reserve"):
        await _reserve(connections, merchant, **changes)

    # Nothing happened: no key claimed, no withdrawal, the pool and the line untouched.
    assert await connections.fetchval("SELECT count(*) FROM idempotency_keys") == 0
    assert await connections.fetchval("SELECT count(*) FROM withdrawals") == 0
    assert await connections.fetchval("SELECT available FROM credit_pool") == Decimal("100.00")
    assert await connections.fetchval("SELECT sum(utilized_amount) FROM merchant_credits") == 0


@pytest.mark.parametrize(
    ("status", "changes"),
    [
        ("PROCESSING", {}),
        ("SUCCESS", {"bank_reference": None}),
        ("FAILED", {"failure_code": None}),
        ("SUCCESS", {"final_tx_id": None}),
    ],
    ids=["open_status", "paid_without_reference", "refused_without_reason", "no_tx_id"],
)
async def test_finish_refuses_arguments_that_would_move_money_wrongly(
    connections: asyncpg.Pool, merchant: MerchantRecord, status: str, changes: dict[str, Any]
) -> None:
    reserved = await _reserve(connections, merchant)
    assert reserved.withdrawal is not None

    with pytest.raises(asyncpg.InvalidParameterValueError, match="creditpool_finish"):
        await _finish(connections, reserved.withdrawal.id, status, **changes)

    assert (
        await connections.fetchval(
            "SELECT status FROM withdrawals WHERE id = $1", reserved.withdrawal.id
        )
        == "PROCESSING"
    )
    assert (
        await connections.fetchval("SELECT count(*) FROM ledger_entries WHERE kind <> 'TOPUP'") == 2
    )


async def test_a_temp_table_cannot_stand_in_for_the_pool(
    connections: asyncpg.Pool, merchant: MerchantRecord
) -> None:
    # A session's temporary tables come first on its default search_path: an unpinned
    # function would take the money from this look-alike instead of the real pool row.
    async with connections.acquire() as conn:
        await conn.execute(
            "CREATE TEMP TABLE credit_pool (id integer, available numeric, updated_at timestamptz)"
        )
        await conn.execute("INSERT INTO pg_temp.credit_pool VALUES (1, 1000000, now())")
        reserved = await _reserve(conn, merchant, amount=Decimal("40.00"))
        assert reserved.outcome == "RESERVED"
        assert await conn.fetchval("SELECT available FROM pg_temp.credit_pool") == 1000000
        assert await conn.fetchval("SELECT available FROM public.credit_pool") == Decimal("60.00")
        await conn.execute("DROP TABLE pg_temp.credit_pool")
