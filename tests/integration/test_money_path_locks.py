"""The batched money transactions as PostgreSQL sees them: the order they take their locks
in and the ledger moves they write.

Lock order is observed, not read from the code: one connection holds a row, the transaction
runs on the engine and waits for it, and a probe (lock_timeout, pg_locks) sees which rows the
waiting transaction already holds.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from app.ledger.service import WITHDRAWAL_MOVES
from app.models import WithdrawalStatus
from app.withdrawals.decide import ReserveRequest
from app.withdrawals.errors import InsufficientPool
from app.withdrawals.finish import FinishRequest, finish_batch
from app.withdrawals.repository import WithdrawalRow
from app.withdrawals.reserve import reserve_batch
from tests.support.factories import MerchantRecord, create_merchant, fund_pool

pytestmark = pytest.mark.usefixtures("clean_db")

_POOL_ROW = "SELECT 1 FROM credit_pool WHERE id = 1 FOR UPDATE"
_LINE = "SELECT 1 FROM merchant_credits WHERE merchant_id = :m FOR UPDATE"
_KEY = "SELECT 1 FROM idempotency_keys WHERE merchant_id = :m AND key = :k FOR UPDATE"
# A claimed key is not committed yet: only a second claim of it waits for its lock.
_CLAIM = "INSERT INTO idempotency_keys (merchant_id, key, request_hash) VALUES (:m, :k, 'x')"
_WITHDRAWAL = "SELECT 1 FROM withdrawals WHERE id = :w FOR UPDATE"


@pytest.fixture
async def merchant(sessionmaker: async_sessionmaker[AsyncSession]) -> MerchantRecord:
    async with sessionmaker() as session, session.begin():
        await fund_pool(session, "100.00")
        return await create_merchant(session, credit_limit=Decimal("50.00"))


@pytest.fixture
async def holder(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        yield conn


@pytest.fixture
async def probe(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        yield conn


def _request(merchant: MerchantRecord, amount: str = "10.00", key: str | None = None) -> Any:
    return ReserveRequest(
        merchant_id=merchant.id,
        key=key or uuid.uuid4().hex,
        request_hash="hash",
        amount=Decimal(amount),
        status=WithdrawalStatus.PROCESSING,
        withdrawal_id=uuid.uuid4(),
        reserve_tx_id=uuid.uuid4(),
    )


async def _reserved(engine: AsyncEngine, merchant: MerchantRecord, **kw: Any) -> WithdrawalRow:
    [result] = await reserve_batch(engine, [_request(merchant, **kw)])
    assert isinstance(result, WithdrawalRow), result
    return result


def _finish(withdrawal: WithdrawalRow, status: WithdrawalStatus) -> FinishRequest:
    paid = status == WithdrawalStatus.SUCCESS
    return FinishRequest(
        withdrawal_id=withdrawal.id,
        status=status,
        final_tx_id=uuid.uuid4(),
        response_status=200 if paid else 422,
        response_body={"status": str(status)},
        bank_reference="BNK-1" if paid else None,
        failure_code=None if paid else "ACCOUNT_REJECTED",
    )


async def _pid(conn: AsyncConnection) -> int:
    return int(await conn.scalar(text("SELECT pg_backend_pid()")) or 0)


async def _waiter(probe: AsyncConnection, holder_pid: int) -> int:
    """The backend that waits for a lock `holder_pid` holds (the transaction under test)."""
    for _ in range(500):
        pid = await probe.scalar(
            text("SELECT pid FROM pg_stat_activity WHERE :h = ANY(pg_blocking_pids(pid))"),
            {"h": holder_pid},
        )
        await probe.rollback()
        if pid is not None:
            return int(pid)
        await asyncio.sleep(0.01)
    raise AssertionError(f"nothing ever waited for backend {holder_pid}")


async def _locked(probe: AsyncConnection, sql: str, **params: Any) -> bool:
    """Whether another transaction holds the row `sql` locks (rolled back either way)."""
    await probe.begin()
    try:
        await probe.execute(text("SET LOCAL lock_timeout = '50ms'"))
        await probe.execute(text(sql), params)
    except DBAPIError as exc:
        assert getattr(exc.orig, "sqlstate", None) == "55P03", exc
        return True
    finally:
        await probe.rollback()
    return False


async def _relation_locks(probe: AsyncConnection, pid: int) -> set[str]:
    rows = await probe.execute(
        text(
            "SELECT relation::regclass::text AS name FROM pg_locks"
            " WHERE pid = :p AND locktype = 'relation' AND granted AND mode = 'RowExclusiveLock'"
        ),
        {"p": pid},
    )
    names = {row.name for row in rows}
    await probe.rollback()
    return names


async def test_reserve_takes_the_keys_then_the_lines_and_the_pool_row_last(
    engine: AsyncEngine, holder: AsyncConnection, probe: AsyncConnection, merchant: MerchantRecord
) -> None:
    key = uuid.uuid4().hex
    async with holder.begin():
        await holder.execute(text(_POOL_ROW))
        reserving = asyncio.create_task(reserve_batch(engine, [_request(merchant, key=key)]))
        runner = await _waiter(probe, await _pid(holder))
        # Waiting for the pool row, it already holds the key and the merchant's line, and has
        # written the withdrawal, its line update and its ledger entries.
        assert await _locked(probe, _LINE, m=merchant.id)
        assert await _locked(probe, _CLAIM, m=merchant.id, k=key)
        assert {
            "idempotency_keys",
            "merchant_credits",
            "withdrawals",
            "ledger_entries",
            "credit_pool",
        } <= await _relation_locks(probe, runner)
    [reserved] = await reserving
    assert isinstance(reserved, WithdrawalRow)


async def test_reserve_waiting_for_the_line_does_not_hold_the_pool_row(
    engine: AsyncEngine, holder: AsyncConnection, probe: AsyncConnection, merchant: MerchantRecord
) -> None:
    async with holder.begin():
        await holder.execute(text(_LINE), {"m": merchant.id})
        reserving = asyncio.create_task(reserve_batch(engine, [_request(merchant)]))
        runner = await _waiter(probe, await _pid(holder))
        assert not await _locked(probe, _POOL_ROW)
        assert "credit_pool" not in await _relation_locks(probe, runner)
    [reserved] = await reserving
    assert isinstance(reserved, WithdrawalRow)


async def test_a_short_pool_is_locked_after_the_lines_and_before_the_writes(
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    holder: AsyncConnection,
    probe: AsyncConnection,
    merchant: MerchantRecord,
) -> None:
    async with sessionmaker() as session, session.begin():
        big = await create_merchant(session, credit_limit=Decimal("500.00"))
    # 100.00 in the pool, the batch asks 140.00: decided against the locked pool, greedily.
    requests = [_request(big, "60.00"), _request(big, "50.00"), _request(big, "30.00")]
    async with holder.begin():
        await holder.execute(text(_POOL_ROW))
        reserving = asyncio.create_task(reserve_batch(engine, requests))
        runner = await _waiter(probe, await _pid(holder))
        assert await _locked(probe, _LINE, m=big.id)
        assert "withdrawals" not in await _relation_locks(probe, runner)
    first, second, third = await reserving
    assert isinstance(first, WithdrawalRow) and isinstance(third, WithdrawalRow)
    assert isinstance(second, InsufficientPool)
    available = await probe.scalar(text("SELECT available FROM credit_pool"))
    assert available == Decimal("10.00")


async def test_release_takes_withdrawal_key_and_line_before_the_pool_row(
    engine: AsyncEngine, holder: AsyncConnection, probe: AsyncConnection, merchant: MerchantRecord
) -> None:
    withdrawal = await _reserved(engine, merchant, key="release")
    async with holder.begin():
        await holder.execute(text(_POOL_ROW))
        finishing = asyncio.create_task(
            finish_batch(engine, [_finish(withdrawal, WithdrawalStatus.FAILED)])
        )
        await _waiter(probe, await _pid(holder))
        assert await _locked(probe, _WITHDRAWAL, w=withdrawal.id)
        assert await _locked(probe, _KEY, m=merchant.id, k="release")
        assert await _locked(probe, _LINE, m=merchant.id)
    [done] = await finishing
    assert not isinstance(done, BaseException) and done.finished


async def test_settle_never_touches_the_pool_row(
    engine: AsyncEngine, holder: AsyncConnection, merchant: MerchantRecord
) -> None:
    withdrawal = await _reserved(engine, merchant)
    async with holder.begin():
        await holder.execute(text(_POOL_ROW))
        # Were the pool row on its way, this would wait into the statement timeout and fail.
        [done] = await finish_batch(engine, [_finish(withdrawal, WithdrawalStatus.SUCCESS)])
    assert not isinstance(done, BaseException) and done.finished


async def test_the_batches_write_the_moves_the_ledger_defines(
    engine: AsyncEngine, probe: AsyncConnection, merchant: MerchantRecord
) -> None:
    [paid, refused] = await reserve_batch(
        engine, [_request(merchant, "10.00"), _request(merchant, "20.00")]
    )
    assert isinstance(paid, WithdrawalRow) and isinstance(refused, WithdrawalRow)
    await finish_batch(
        engine,
        [_finish(paid, WithdrawalStatus.SUCCESS), _finish(refused, WithdrawalStatus.FAILED)],
    )
    rows = await probe.execute(
        text(
            "SELECT withdrawal_id, kind, account, amount FROM ledger_entries"
            " WHERE withdrawal_id IS NOT NULL"
        )
    )
    written = {(r.withdrawal_id, r.kind, r.account, r.amount) for r in rows}
    expected = set()
    for withdrawal, kinds in ((paid, ("RESERVE", "SETTLE")), (refused, ("RESERVE", "RELEASE"))):
        for kind in kinds:
            debit, credit = WITHDRAWAL_MOVES[kind]  # type: ignore[index]
            expected |= {
                (withdrawal.id, kind, debit, -withdrawal.amount),
                (withdrawal.id, kind, credit, withdrawal.amount),
            }
    assert written == expected


async def test_finishing_twice_in_one_batch_finishes_once_and_answers_the_real_state(
    engine: AsyncEngine, merchant: MerchantRecord
) -> None:
    withdrawal = await _reserved(engine, merchant)
    first, second = await finish_batch(
        engine,
        [
            _finish(withdrawal, WithdrawalStatus.SUCCESS),
            _finish(withdrawal, WithdrawalStatus.FAILED),
        ],
    )
    assert not isinstance(first, BaseException) and first.finished
    assert not isinstance(second, BaseException) and not second.finished
    assert second.withdrawal.status == WithdrawalStatus.SUCCESS
