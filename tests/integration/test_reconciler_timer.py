"""The worker's own reconciler timer finishes stuck withdrawals while Redis is down."""

import asyncio
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.dev.embedded import EmbeddedRedis
from app.dev.embedded.process import free_port
from app.models import WithdrawalStatus
from app.withdrawals import settlement_client
from app.withdrawals.money_path import MoneyPath
from app.withdrawals.settlement_client import Outcome, create_http_client
from tests.support.factories import create_merchant, create_withdrawal, fund_pool
from tests.support.money import assert_books_balance, bank_transfers, withdrawal_row
from tests.support.worker import running_worker, worker_env


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    """A Redis of this test's own, so stopping it leaves the session's shared one alone."""
    with tempfile.TemporaryDirectory(prefix="creditpool-redis-") as root:
        redis = EmbeddedRedis(Path(root), port=free_port(), durable=False)
        redis.start()
        try:
            yield redis
        finally:
            redis.stop()


def _mtime_ns(path: Path) -> int | None:
    return path.stat().st_mtime_ns if path.exists() else None


async def _wait_for(heartbeat: Path, process: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        assert process.poll() is None, "the worker exited"
        if _mtime_ns(heartbeat) is not None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the worker's timer never beat")


async def _beats(heartbeat: Path, process: subprocess.Popen[bytes], count: int) -> None:
    """Wait for `count` more heartbeats, the worker alive all along. arq polls Redis every
    0.5 s, and without its retries a poll that finds Redis gone ends the process."""
    seen = _mtime_ns(heartbeat)
    for _ in range(count):
        for _ in range(600):
            assert process.poll() is None, "a Redis outage ended the worker"
            if (beat := _mtime_ns(heartbeat)) != seen:
                seen = beat
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the worker's timer stopped beating")


def _alive(settings: Settings, heartbeat: Path) -> int:
    env = worker_env(settings, WORKER_HEARTBEAT_FILE=str(heartbeat))
    command = [sys.executable, "-m", "app", "worker-alive"]
    return subprocess.run(command, env=env, capture_output=True, timeout=60).returncode


async def test_with_redis_down_a_withdrawal_settlement_paid_reaches_success(
    settings: Settings,
    clean_db: None,
    own_redis: EmbeddedRedis,
    sessionmaker: async_sessionmaker[AsyncSession],
    money: MoneyPath,
    tmp_path: Path,
) -> None:
    heartbeat = tmp_path / "alive"
    worker_settings = settings.model_copy(update={"REDIS_URL": own_redis.url})
    timer = {"RECONCILE_EVERY_S": "0.2", "RECONCILE_AFTER_S": "0"}
    with running_worker(worker_settings, WORKER_HEARTBEAT_FILE=str(heartbeat), **timer) as worker:
        await _wait_for(heartbeat, worker)
        own_redis.stop()  # from here on the worker has no Redis at all
        await _beats(heartbeat, worker, count=10)  # several of arq's polls meet no Redis

        # A sync-mode 202: reserved, PROCESSING, and settlement paid it (the answer was lost).
        async with sessionmaker() as session, session.begin():
            await fund_pool(session, "100.00")
            merchant = await create_merchant(session, bank_account="DE89370400440532013000")
            stuck = await create_withdrawal(
                session, merchant=merchant, amount="25.00", status=WithdrawalStatus.PROCESSING
            )
        async with create_http_client(settings) as http:
            order = await withdrawal_row(money, stuck.id)
            paid = await settlement_client.pay(http, settings, order)
        assert paid.outcome == Outcome.PAID

        for _ in range(600):
            row = await withdrawal_row(money, stuck.id)
            if row.status != WithdrawalStatus.PROCESSING:
                break
            await asyncio.sleep(0.05)
        assert worker.poll() is None, "a Redis outage ended the worker"
        # Its liveness probe holds too: nothing would restart it during the outage.
        assert _alive(settings, heartbeat) == 0
        # The outage ends before the worker stops: arq's shutdown waits for Redis.
        own_redis.start()

    assert (row.status, row.bank_reference) == (WithdrawalStatus.SUCCESS, paid.bank_reference)
    assert row.amount == Decimal("25.00")
    assert await bank_transfers(sessionmaker) == {"PAID": 1}
    await assert_books_balance(sessionmaker)


def test_the_liveness_probe_fails_without_a_recent_heartbeat(
    settings: Settings, tmp_path: Path
) -> None:
    assert _alive(settings, tmp_path / "never-written") == 1
