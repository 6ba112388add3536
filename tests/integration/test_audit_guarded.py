"""Breaks that the schema itself refuses: CHECK, unique and primary-key constraints.

Each test drops the constraint inside its own transaction, breaks the invariant, audits that
same transaction with `run_checks` and rolls everything back (PostgreSQL DDL is
transactional), so the schema other tests see never changes.
"""

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from sqlalchemy import insert, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit import checks
from app.audit.report import AuditReport
from app.audit.service import run_checks
from app.ledger import repository as ledger_repository
from app.ledger import service as ledger
from app.models import LedgerKind, MerchantCredit, Withdrawal, WithdrawalStatus
from tests.support.factories import (
    MerchantRecord,
    SeededBook,
    create_merchant,
    create_withdrawal,
    seed_consistent_book,
)

pytestmark = pytest.mark.usefixtures("clean_db")

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture(scope="module")
def sessionmaker(owner_sessionmaker: Sessions) -> Sessions:
    """The owner's sessions for this whole module: its tests break the books with plain SQL
    (the ledger, settlement's rows), which no runtime role may do, so the audit here runs as
    the owner too (as the api role: tests/integration/test_audit_cli.py)."""
    return owner_sessionmaker


@pytest.fixture
async def book(sessionmaker: Sessions) -> SeededBook:
    async with sessionmaker() as session, session.begin():
        return await seed_consistent_book(session)


@pytest.fixture
async def session(sessionmaker: Sessions, book: SeededBook) -> AsyncIterator[AsyncSession]:
    """One transaction that is always rolled back, constraint drops included."""
    async with sessionmaker() as session:
        await session.begin()
        try:
            yield session
        finally:
            await session.rollback()


async def drop_constraint(session: AsyncSession, table: str, name: str) -> None:
    await session.execute(text(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}"))


async def reserve_past_the_pool(
    session: AsyncSession, *, merchant: MerchantRecord, amount: Decimal
) -> None:
    """A reservation the money path refuses (the pool cannot cover it), written by hand with
    the ledger's own move, so that only the pool is wrong."""
    assert merchant.account_id is not None
    withdrawal_id, tx_id = uuid.uuid4(), uuid.uuid4()
    await session.execute(
        insert(Withdrawal).values(
            id=withdrawal_id,
            merchant_id=merchant.id,
            account_id=merchant.account_id,
            amount=amount,
            status=WithdrawalStatus.QUEUED,
            idempotency_key=f"past-the-pool-{withdrawal_id}",
            bank_account=merchant.bank_account,
            reserve_tx_id=tx_id,
        )
    )
    await ledger.record_withdrawal_move(
        session, kind=LedgerKind.RESERVE, tx_id=tx_id, amount=amount, withdrawal_id=withdrawal_id
    )
    await session.execute(
        update(MerchantCredit)
        .where(MerchantCredit.merchant_id == merchant.id)
        .values(utilized_amount=MerchantCredit.utilized_amount + amount)
    )
    await ledger_repository.add_to_pool(session, amount=-amount)


def assert_only_failed(report: AuditReport, check: checks.Check) -> list[str]:
    assert report.failed == [check.name], report.render()
    return report.check(check.name).violations


async def test_pool_reserved_below_zero_fails_the_bounds_check(
    session: AsyncSession, book: SeededBook
):
    await drop_constraint(session, "credit_pool", "ck_credit_pool_available_not_negative")
    big = await create_merchant(session, credit_limit=Decimal("5000.00"))
    # Everything else about this reservation is consistent: only the pool went negative.
    await reserve_past_the_pool(session, merchant=big, amount=Decimal("1000.00"))

    violations = assert_only_failed(await run_checks(session), checks.BOUNDS)

    assert violations == ["credit_pool id 1: available -60.00 is negative"]


async def test_utilized_above_the_limit_fails_the_bounds_check(
    session: AsyncSession, book: SeededBook
):
    await drop_constraint(session, "merchant_credits", "ck_merchant_credits_utilized_within_limit")
    await session.execute(
        text("UPDATE merchant_credits SET credit_limit = 50.00 WHERE merchant_id = :id"),
        {"id": book.merchant.id},
    )

    violations = assert_only_failed(await run_checks(session), checks.BOUNDS)

    assert violations == [
        f"merchant {book.merchant.id}: utilized 60.00 is outside [0, credit_limit 50.00]"
    ]


async def test_missing_pool_row_is_reported_not_raised(session: AsyncSession):
    await session.execute(text("DELETE FROM credit_pool"))

    report = await run_checks(session)

    assert "credit_pool row id 1 is missing" in report.check(checks.BOUNDS.name).violations
    assert report.check(checks.LEDGER_BALANCES.name).violations == [
        "POOL ledger balance 940.00 != credit_pool.available (missing)"
    ]
    assert report.totals.pool_available == Decimal("0.00")


async def test_pending_payout_is_not_yet_paid(session: AsyncSession, book: SeededBook):
    # Settlement writes PENDING before it calls the bank. The drop only matters on a schema
    # that predates the PENDING status; it keeps this test independent of that migration.
    await drop_constraint(session, "settlement_payouts", "ck_settlement_payouts_status_known")
    queued, success = book.withdrawals["QUEUED"], book.withdrawals["SUCCESS"]
    await session.execute(
        text(
            "INSERT INTO settlement_payouts (withdrawal_id, merchant_id, account_id, amount,"
            " bank_account, status) SELECT :queued, merchant_id, account_id, 10.00,"
            " bank_account, 'PENDING' FROM settlement_payouts WHERE withdrawal_id = :success"
        ),
        {"queued": queued.id, "success": success.id},
    )
    assert (await run_checks(session)).ok

    await session.execute(
        text(
            "UPDATE settlement_payouts SET status = 'PENDING', bank_reference = NULL"
            " WHERE withdrawal_id = :id"
        ),
        {"id": success.id},
    )
    violations = assert_only_failed(await run_checks(session), checks.PAYOUTS)

    assert "is SUCCESS for 30.00 but its payout is PENDING for 30.00" in violations[0]


async def test_two_withdrawals_with_one_idempotency_key_fail_the_key_check(
    session: AsyncSession, book: SeededBook
):
    await drop_constraint(session, "withdrawals", "uq_withdrawals_merchant_id_idempotency_key")
    first = book.withdrawals["QUEUED"]
    # A consistent second withdrawal (reserved, then released) that then takes the first's
    # key (the money path itself replays a taken key instead).
    second = await create_withdrawal(
        session, merchant=book.merchant, amount="1.00", status=WithdrawalStatus.FAILED
    )
    await session.execute(
        update(Withdrawal)
        .where(Withdrawal.id == second.id)
        .values(idempotency_key=first.idempotency_key)
    )

    violations = assert_only_failed(await run_checks(session), checks.IDEMPOTENCY_KEYS)

    assert violations == [
        f"merchant {book.merchant.id}, key '{first.idempotency_key}': 2 withdrawals"
        f" [{first.id} QUEUED 10.00, {second.id} FAILED 1.00]"
    ]
