"""The audit's transaction: one read-only snapshot, whatever commits meanwhile."""

from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit import checks, repository, service
from app.audit.report import AuditReport
from app.audit.service import run_audit
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from tests.support.factories import SeededBook, fund_pool, seed_consistent_book

pytestmark = pytest.mark.usefixtures("clean_db")

Sessions = async_sessionmaker[AsyncSession]

ONE_LEGGED_ENTRY = (
    "INSERT INTO ledger_entries (tx_id, kind, account, amount)"
    " VALUES (gen_random_uuid(), 'TOPUP', 'POOL', 3.00)"
)


@pytest.fixture
async def book(sessionmaker: Sessions) -> SeededBook:
    async with sessionmaker() as session, session.begin():
        return await seed_consistent_book(session)


async def audit(sessionmaker: Sessions) -> AuditReport:
    async with sessionmaker() as session:
        return await run_audit(session)


async def test_audit_ignores_what_commits_after_its_snapshot(
    sessionmaker: Sessions, book: SeededBook, monkeypatch: pytest.MonkeyPatch
):
    find_violations = repository.find_violations
    calls = 0

    async def find_then_commit_a_break(session: AsyncSession, **kwargs: object) -> object:
        nonlocal calls
        found = await find_violations(session, **kwargs)  # type: ignore[arg-type]
        calls += 1
        if calls == 1:
            # Another connection commits a broken ledger between the first and second check.
            async with sessionmaker() as other, other.begin():
                await other.execute(text(ONE_LEGGED_ENTRY))
        return found

    monkeypatch.setattr(repository, "find_violations", find_then_commit_a_break)
    during = await audit(sessionmaker)
    monkeypatch.undo()
    after = await audit(sessionmaker)

    assert during.ok, during.render()
    assert calls == len(checks.CHECKS) + 1  # and the list of withdrawals to reconcile
    assert checks.BALANCED_TRANSACTIONS.name in after.failed


async def test_audit_is_a_repeatable_read_read_only_transaction_that_leaves_no_trace(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    probe = checks.Check(
        name="transaction_mode",
        description="reports the transaction's settings as its violation",
        sql="SELECT format('%s / %s / %s', current_setting('transaction_isolation'),"
        " current_setting('transaction_read_only'), current_setting('statement_timeout'))"
        " AS violation",
    )
    monkeypatch.setattr(service, "CHECKS", (probe,))
    # One pooled connection, so the transaction after the audit runs on the same connection.
    engine = create_engine(settings, pool_size=1)
    try:
        sessions = create_sessionmaker(engine)
        async with sessions() as session:
            report = await run_audit(session)
        async with sessions() as session, session.begin():
            after = (await session.execute(text(probe.sql))).scalar_one()
            await fund_pool(session, "1.00")
    finally:
        await engine.dispose()

    assert report.check(probe.name).violations == ["repeatable read / on / 5min"]
    assert after == "read committed / off / 5s"


async def test_audit_refuses_a_session_that_is_already_in_a_transaction(sessionmaker: Sessions):
    async with sessionmaker() as session, session.begin():
        await session.execute(text("SELECT 1"))
        with pytest.raises(RuntimeError, match="none open"):
            await run_audit(session)


async def test_audit_sees_a_top_up_committed_before_it_starts(
    sessionmaker: Sessions, book: SeededBook
):
    async with sessionmaker() as session, session.begin():
        await fund_pool(session, "60.00")

    report = await audit(sessionmaker)

    assert report.ok, report.render()
    assert (report.totals.pool_available, report.totals.funded) == (
        Decimal("1000.00"),
        Decimal("1060.00"),
    )
