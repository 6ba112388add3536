"""api_request_log is partitioned by UTC day: each row lands in its day's partition, the
worker's job makes tomorrow's ahead and drops days past retention."""

import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.requestlog import partitions, repository
from app.requestlog.buffer import RequestLogRow, flush
from app.settlement.main import create_app as create_settlement_app
from tests.conftest import _client_for
from tests.support.observability import logged_requests
from tests.support.settlement import WITHDRAW, new_order
from tests.support.stack import settlement_settings
from workers.jobs import maintain_request_log


def _row(at: datetime, request_id: str) -> RequestLogRow:
    return RequestLogRow(
        created_at=at,
        service="api",
        method="GET",
        path="/healthz",
        status=200,
        duration_ms=1.0,
        actor=None,
        request_id=request_id,
        client_addr="127.0.0.1",
        idempotency_key=None,
        withdrawal_id=None,
    )


async def _partition_of(engine: AsyncEngine, request_id: str) -> str:
    async with engine.connect() as conn:
        return str(
            await conn.scalar(
                text("SELECT tableoid::regclass::text FROM api_request_log WHERE request_id = :r"),
                {"r": request_id},
            )
        )


async def _days(engine: AsyncEngine) -> set[date]:
    async with engine.connect() as conn:
        names = await partitions.existing(conn)
    return {day for name in names if (day := partitions.partition_day(name)) is not None}


async def test_a_row_of_any_day_lands_in_its_days_partition(
    engine: AsyncEngine, clean_db: None
) -> None:
    today = datetime.now(UTC).date()
    async with engine.begin() as conn:  # two days back too, as if the worker had made them
        await partitions.maintain(conn, today=today - timedelta(days=2), retention_days=30)
        # Today's and tomorrow's, as the worker makes them hourly (the session's migration made
        # them for the day it started, which is yesterday when this runs after midnight).
        await partitions.maintain(conn, today=today, retention_days=30)
    midnight = datetime(today.year, today.month, today.day, tzinfo=UTC)
    moments = {
        "first-instant-of-today": midnight,
        "last-instant-of-yesterday": midnight - timedelta(microseconds=1),
        "tomorrow-noon": midnight + timedelta(hours=36),
        "two-days-ago": midnight - timedelta(days=2),
    }
    await repository.copy_rows(engine, [_row(at, name) for name, at in moments.items()])
    for name, at in moments.items():
        assert await _partition_of(engine, name) == partitions.partition_name(at.date()), name


async def test_the_job_makes_tomorrow_ahead_and_drops_days_past_retention(
    engine: AsyncEngine, settings: Settings, clean_db: None
) -> None:
    today = datetime.now(UTC).date()
    old = today - timedelta(days=10)
    async with engine.begin() as conn:  # partitions of old and the day after it, with a row
        await partitions.maintain(conn, today=old, retention_days=30)
    at = datetime(old.year, old.month, old.day, 12, tzinfo=UTC)
    await repository.copy_rows(engine, [_row(at, "ten-days-old")])
    kept = today - timedelta(days=3)
    async with engine.begin() as conn:
        await partitions.maintain(conn, today=kept, retention_days=30)
    assert {old, old + timedelta(days=1), kept} <= await _days(engine)

    retention = settings.model_copy(update={"REQUEST_LOG_RETENTION_DAYS": 3})
    ctx = {"engine": engine, "settings": retention}
    done = await maintain_request_log(ctx)

    days = await _days(engine)
    assert {today, today + timedelta(days=1), kept} <= days  # kept: exactly 3 days old
    assert not {old, old + timedelta(days=1)} & days
    assert min(days) >= kept
    assert partitions.partition_name(old) in done.dropped
    assert await _partition_of(engine, "ten-days-old") == "None"  # gone with its day
    # Again: nothing left to do.
    again = await maintain_request_log(ctx)
    assert (again.created, again.dropped) == ([], [])


async def test_settlements_request_log_rows_carry_the_withdrawal_id(
    settings: Settings,
    clean_db: None,
    auth: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    app = create_settlement_app(settlement_settings(settings))
    order = new_order()
    async for client in _client_for(app, "http://settlement.test"):
        paid = await client.post(WITHDRAW, json=order, headers=auth)
        assert paid.status_code == 200, paid.text
        await flush(app.state.request_log, app.state.engine)
    rows = {
        row.request_id: row for row in await logged_requests(sessionmaker, service="settlement")
    }
    assert rows[paid.headers["X-Request-ID"]].withdrawal_id == uuid.UUID(order["withdrawal_id"])
