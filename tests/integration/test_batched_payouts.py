"""The worker pays in batches: concurrent payout jobs coalesce into one claim, one settlement
call and one finish per batch; two workers share one queue without overlap; a worker killed
mid-batch loses nothing and pays nothing twice."""

import asyncio
import signal
from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.models import Withdrawal, WithdrawalStatus
from app.settlement.main import create_app as create_settlement_app
from app.withdrawals.money_path import MoneyPath
from app.withdrawals.payout import ALREADY_FINAL, BUSY, payout_batch
from app.withdrawals.queue import enqueue_payout
from app.withdrawals.settlement_client import create_http_client
from tests.support.factories import create_merchant, create_withdrawal, fund_pool
from tests.support.money import assert_books_balance, bank_transfers, withdrawal_row
from tests.support.servers import serve
from tests.support.settlement import CountingBank
from tests.support.stack import settlement_settings
from tests.support.worker import batch_sizes, running_worker

PAYOUTS = 60
# Only the payout jobs send anything: the sweeper and the reconciler timer find nothing old
# enough, and no job times out while settlement is slow.
JOBS_ONLY = {"RECONCILE_AFTER_S": "600", "WORKER_JOB_TIMEOUT_S": "30"}


@pytest.fixture
async def arq_pool(settings: Settings, redis: Redis) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(RedisSettings.from_dsn(settings.redis_url))
    yield pool
    await pool.aclose()


@pytest.fixture
async def slow_settlement(settings: Settings) -> AsyncIterator[tuple[str, CountingBank]]:
    """Settlement over real HTTP whose bank takes a while (jobs pile up behind a batch) and
    counts every call it receives."""
    app = create_settlement_app(
        settlement_settings(settings.model_copy(update={"BANK_LATENCY_MS": 300}))
    )
    async with serve(app) as base_url:
        app.state.bank = bank = CountingBank(app.state.bank)
        yield f"{base_url}/api/settlement/withdraw", bank


async def _queued(
    sessionmaker: async_sessionmaker[AsyncSession], arq: ArqRedis, count: int
) -> list[UUID]:
    """`count` reserved QUEUED withdrawals, each with its payout job (as the api leaves them)."""
    async with sessionmaker() as session, session.begin():
        await fund_pool(session, "10000.00")
        merchants = [await create_merchant(session) for _ in range(count // 10)]
        withdrawals = [
            await create_withdrawal(
                session,
                merchant=merchants[i % len(merchants)],
                amount="1.00",
                status=WithdrawalStatus.QUEUED,
            )
            for i in range(count)
        ]
    for withdrawal in withdrawals:
        assert await enqueue_payout(arq, withdrawal.id)
    return [withdrawal.id for withdrawal in withdrawals]


async def _statuses(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(Withdrawal.status, func.count()).group_by(Withdrawal.status)
        )
        return {str(status): count for status, count in rows}


async def _wait_all_paid(sessionmaker: async_sessionmaker[AsyncSession], count: int) -> None:
    # Polls the database: the workers' progress is not an event this process can await.
    for _ in range(1200):
        if await _statuses(sessionmaker) == {"SUCCESS": count}:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not all paid: {await _statuses(sessionmaker)}")


async def test_queued_payouts_are_paid_in_batches_each_sent_to_the_bank_once(
    settings: Settings,
    clean_db: None,
    sessionmaker: async_sessionmaker[AsyncSession],
    arq_pool: ArqRedis,
    slow_settlement: tuple[str, CountingBank],
    tmp_path: Path,
) -> None:
    url, bank = slow_settlement
    ids = await _queued(sessionmaker, arq_pool, PAYOUTS)
    metrics = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    with running_worker(settings, SETTLEMENT_URL=url, **JOBS_ONLY, **metrics):
        await _wait_all_paid(sessionmaker, PAYOUTS)
    batches, members = batch_sizes(tmp_path, "payout")
    assert members == PAYOUTS  # each job ran once
    assert batches <= PAYOUTS / 4, f"{batches} payout batches for {PAYOUTS} payouts"
    assert Counter(bank.calls) == Counter(ids)
    assert await bank_transfers(sessionmaker) == {"PAID": PAYOUTS}
    await assert_books_balance(sessionmaker)


async def _heartbeats(paths: list[Path]) -> None:
    for _ in range(1200):
        if all(path.exists() for path in paths):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("a worker never started")


async def test_two_workers_share_one_queue_and_each_payout_is_sent_once(
    settings: Settings,
    clean_db: None,
    sessionmaker: async_sessionmaker[AsyncSession],
    arq_pool: ArqRedis,
    slow_settlement: tuple[str, CountingBank],
    tmp_path: Path,
) -> None:
    url, bank = slow_settlement
    dirs, beats = [tmp_path / "a", tmp_path / "b"], [tmp_path / "a.alive", tmp_path / "b.alive"]
    for directory in dirs:
        directory.mkdir()
    # Fewer jobs at a time than there are payouts, so neither worker can take the whole queue.
    each = [
        {
            "PROMETHEUS_MULTIPROC_DIR": str(directory),
            "WORKER_HEARTBEAT_FILE": str(beat),
            "WORKER_MAX_JOBS": "20",
        }
        for directory, beat in zip(dirs, beats, strict=True)
    ]
    with (
        running_worker(settings, SETTLEMENT_URL=url, **JOBS_ONLY, **each[0]),
        running_worker(settings, SETTLEMENT_URL=url, **JOBS_ONLY, **each[1]),
    ):
        await _heartbeats(beats)  # both poll the queue before the first job is there
        ids = await _queued(sessionmaker, arq_pool, PAYOUTS)
        await _wait_all_paid(sessionmaker, PAYOUTS)
    shares = [batch_sizes(directory, "payout")[1] for directory in dirs]
    assert all(shares) and sum(shares) == PAYOUTS, shares  # both worked; no job ran twice
    assert Counter(bank.calls) == Counter(ids)
    assert await bank_transfers(sessionmaker) == {"PAID": PAYOUTS}
    await assert_books_balance(sessionmaker)


async def test_a_worker_killed_mid_batch_loses_nothing_and_pays_nothing_twice(
    settings: Settings,
    clean_db: None,
    sessionmaker: async_sessionmaker[AsyncSession],
    arq_pool: ArqRedis,
    slow_settlement: tuple[str, CountingBank],
) -> None:
    url, bank = slow_settlement
    ids = await _queued(sessionmaker, arq_pool, PAYOUTS)
    with running_worker(settings, SETTLEMENT_URL=url, **JOBS_ONLY) as doomed:
        # A batch is claimed (PROCESSING) and at settlement, whose bank takes 300 ms.
        while (await _statuses(sessionmaker)).get("PROCESSING", 0) < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
    cut = await _statuses(sessionmaker)
    assert cut.get("PROCESSING", 0) >= 2, cut  # claimed, paid or not, never recorded
    await assert_books_balance(sessionmaker)  # the money of each is still reserved

    # A new worker: its reconciler timer finishes the cut batch (and the rest) at once; the
    # killed worker's jobs come back later and find their withdrawals final.
    recover = {"RECONCILE_AFTER_S": "1", "RECONCILE_EVERY_S": "0.5"}
    with running_worker(settings, SETTLEMENT_URL=url, **recover):
        await _wait_all_paid(sessionmaker, PAYOUTS)
    assert Counter(bank.calls) == Counter(ids)
    assert await bank_transfers(sessionmaker) == {"PAID": PAYOUTS}
    await assert_books_balance(sessionmaker)  # one SETTLE entry each, nothing released


async def test_a_batch_pays_open_rows_skips_locked_ones_and_leaves_final_ones(
    settings: Settings,
    clean_db: None,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    money: MoneyPath,
) -> None:
    async with sessionmaker() as session, session.begin():
        await fund_pool(session, "100.00")
        merchant = await create_merchant(session, credit_limit=Decimal("50.00"))
        queued, locked, final = [
            await create_withdrawal(session, merchant=merchant, amount="5.00", status=status)
            for status in (WithdrawalStatus.QUEUED, WithdrawalStatus.QUEUED, "SUCCESS")
        ]
    # Another transaction (a worker's claim, a finish) holds one row meanwhile.
    async with engine.connect() as holder, holder.begin():
        await holder.execute(
            select(Withdrawal.id).where(Withdrawal.id == locked.id).with_for_update()
        )
        async with create_http_client(settings) as http:
            batch = [queued.id, locked.id, final.id, queued.id]  # one job delivered twice
            outcomes = await asyncio.wait_for(
                payout_batch(money, batch, http=http, settings=settings), timeout=30
            )
    assert outcomes == ["PAID", BUSY, ALREADY_FINAL, "PAID"]
    skipped = await withdrawal_row(money, locked.id)
    assert (skipped.status, skipped.attempts) == (WithdrawalStatus.QUEUED, 0)  # never sent
    assert (await withdrawal_row(money, queued.id)).attempts == 1
    assert await bank_transfers(sessionmaker) == {"PAID": 2}  # the final one's and queued's
    await assert_books_balance(sessionmaker)
