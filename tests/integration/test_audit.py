"""The audit on committed data: a consistent book is clean, and each break is named."""

import uuid
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit import checks
from app.audit.report import AuditReport
from app.audit.schemas import AuditOut
from app.audit.service import run_audit
from app.ledger import repository as ledger_repository
from app.models import LedgerAccount, LedgerKind
from tests.support.factories import SeededBook, seed_consistent_book

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


async def audit(sessionmaker: Sessions) -> AuditReport:
    async with sessionmaker() as session:
        return await run_audit(session)


async def execute(sessionmaker: Sessions, *statements: str, **params: object) -> None:
    """Run and commit raw SQL; each statement binds the parameters it names."""
    async with sessionmaker() as session, session.begin():
        for sql in statements:
            await session.execute(text(sql), params)


def assert_only_failed(report: AuditReport, check: checks.Check) -> list[str]:
    """Only `check` failed; returns its violations."""
    assert report.failed == [check.name], report.render()
    assert not report.ok
    return report.check(check.name).violations


async def test_empty_database_audits_clean(sessionmaker: Sessions):
    report = await audit(sessionmaker)

    assert report.ok, report.render()
    assert report.totals.pool_available == Decimal("0.00")
    assert report.totals.withdrawals == {"QUEUED": 0, "PROCESSING": 0, "SUCCESS": 0, "FAILED": 0}


async def test_consistent_book_audits_clean_with_its_totals(
    sessionmaker: Sessions, book: SeededBook
):
    report = await audit(sessionmaker)

    assert report.ok, report.render()
    assert [c.name for c in report.checks] == [c.name for c in checks.CHECKS]
    totals = report.totals
    assert totals.pool_available == Decimal("940.00")  # 1000 - 10 - 20 - 30; FAILED released
    assert totals.in_flight == Decimal("30.00")
    assert totals.paid_out == Decimal("30.00")
    assert totals.funded == Decimal("1000.00")
    assert totals.withdrawals == {"QUEUED": 1, "PROCESSING": 1, "SUCCESS": 1, "FAILED": 1}
    rendered = report.render()
    assert rendered.startswith("Creditpool audit: PASS")
    assert rendered.count("  PASS  ") == len(checks.CHECKS)
    assert "pool available 940.00, in flight 30.00, paid out 30.00, funded 1000.00" in rendered


async def test_audit_out_serialises_money_as_strings(sessionmaker: Sessions, book: SeededBook):
    await execute(sessionmaker, "UPDATE credit_pool SET available = available + 1")

    body = AuditOut.model_validate(await audit(sessionmaker)).model_dump(mode="json")

    assert body["ok"] is False
    assert body["totals"]["pool_available"] == "941.00"
    assert body["totals"]["withdrawals"]["SUCCESS"] == 1
    failed = [c for c in body["checks"] if not c["ok"]]
    assert [c["name"] for c in failed] == [checks.LEDGER_BALANCES.name]
    assert failed[0]["violation_count"] == 1


async def test_processing_withdrawal_already_paid_by_settlement_is_not_a_violation(
    sessionmaker: Sessions, book: SeededBook
):
    processing = book.withdrawals["PROCESSING"]
    await execute(
        sessionmaker,
        "INSERT INTO settlement_payouts (withdrawal_id, merchant_id, account_id, amount,"
        " bank_account, status, bank_reference) VALUES (:id, :merchant, :account, :amount,"
        " 'DE0000000001', 'PAID', 'bank-ref')",
        "INSERT INTO settlement_bank_transfers (reference, amount, account, status,"
        " bank_reference) VALUES (:id, :amount, 'DE0000000001', 'PAID', 'bank-ref')",
        id=processing.id,
        merchant=book.merchant.id,
        account=book.merchant.account_id,
        amount=processing.amount,
    )

    report = await audit(sessionmaker)

    assert report.ok, report.render()
    assert report.to_reconcile.violations == [
        f"withdrawal {processing.id} (merchant {book.merchant.id}) is PROCESSING for 20.00;"
        " the bank paid it (bank-ref)"
    ]
    assert "To reconcile: 1" in report.render()


async def test_transfer_split_across_two_tx_ids_fails_only_the_balance_check(
    sessionmaker: Sessions, book: SeededBook
):
    # Each leg of a top-up under its own tx_id: the account balances still add up, only the
    # per-transaction check can see it.
    funding_tx, pool_tx = uuid.uuid4(), uuid.uuid4()
    await execute(
        sessionmaker,
        "INSERT INTO ledger_entries (tx_id, kind, account, amount) VALUES"
        " (:funding_tx, 'TOPUP', 'FUNDING', -5.00), (:pool_tx, 'TOPUP', 'POOL', 5.00)",
        "UPDATE credit_pool SET available = available + 5.00",
        funding_tx=funding_tx,
        pool_tx=pool_tx,
    )

    violations = assert_only_failed(await audit(sessionmaker), checks.BALANCED_TRANSACTIONS)

    assert sorted(violations) == sorted(
        [
            f"tx {funding_tx}: entries [TOPUP FUNDING -5.00] sum to -5.00",
            f"tx {pool_tx}: entries [TOPUP POOL 5.00] sum to 5.00",
        ]
    )


async def _orphan_transfers(sessionmaker: Sessions, *kinds: LedgerKind) -> None:
    """Reserve (and maybe settle) 7.00 with no withdrawal behind it, moving the pool row too."""
    accounts = {
        LedgerKind.RESERVE: (LedgerAccount.POOL, LedgerAccount.IN_FLIGHT),
        LedgerKind.SETTLE: (LedgerAccount.IN_FLIGHT, LedgerAccount.PAID_OUT),
    }
    async with sessionmaker() as session, session.begin():
        for kind in kinds:
            debit, credit = accounts[kind]
            await ledger_repository.insert_transfer(
                session,
                tx_id=uuid.uuid4(),
                kind=kind,
                debit_account=debit,
                credit_account=credit,
                amount=Decimal("7.00"),
            )
        await ledger_repository.add_to_pool(session, amount=Decimal("-7.00"))


async def test_pool_row_drifting_from_the_ledger_fails_the_balance_check(
    sessionmaker: Sessions, book: SeededBook
):
    await execute(sessionmaker, "UPDATE credit_pool SET available = available + 1.00")

    violations = assert_only_failed(await audit(sessionmaker), checks.LEDGER_BALANCES)

    assert violations == ["POOL ledger balance 940.00 != credit_pool.available 941.00"]


async def test_reservation_without_a_withdrawal_fails_the_in_flight_balance(
    sessionmaker: Sessions, book: SeededBook
):
    await _orphan_transfers(sessionmaker, LedgerKind.RESERVE)

    violations = assert_only_failed(await audit(sessionmaker), checks.LEDGER_BALANCES)

    assert violations == ["IN_FLIGHT ledger balance 37.00 != QUEUED+PROCESSING withdrawals 30.00"]


async def test_payout_without_a_withdrawal_fails_the_paid_out_balance(
    sessionmaker: Sessions, book: SeededBook
):
    await _orphan_transfers(sessionmaker, LedgerKind.RESERVE, LedgerKind.SETTLE)

    violations = assert_only_failed(await audit(sessionmaker), checks.LEDGER_BALANCES)

    assert violations == ["PAID_OUT ledger balance 37.00 != SUCCESS withdrawals 30.00"]


async def test_funding_moved_without_a_top_up_fails_the_funding_balance(
    sessionmaker: Sessions, book: SeededBook
):
    # Balanced, and the pool row follows, but the credit to POOL is not booked as a TOPUP.
    await execute(
        sessionmaker,
        "INSERT INTO ledger_entries (tx_id, kind, account, amount) VALUES"
        " (:tx, 'TOPUP', 'FUNDING', -7.00), (:tx, 'RELEASE', 'POOL', 7.00)",
        "UPDATE credit_pool SET available = available + 7.00",
        tx=uuid.uuid4(),
    )

    violations = assert_only_failed(await audit(sessionmaker), checks.LEDGER_BALANCES)

    assert violations == ["FUNDING ledger balance -1007.00 != minus TOPUP credits to POOL -1000.00"]


async def test_utilized_not_matching_withdrawals_fails_the_utilized_check(
    sessionmaker: Sessions, book: SeededBook
):
    await execute(
        sessionmaker,
        "UPDATE merchant_credits SET utilized_amount = utilized_amount + 1 WHERE merchant_id = :id",
        id=book.merchant.id,
    )

    violations = assert_only_failed(await audit(sessionmaker), checks.MERCHANT_UTILIZED)

    assert violations == [
        f"merchant {book.merchant.id}: utilized 61.00"
        " != QUEUED+PROCESSING+SUCCESS withdrawals 60.00"
    ]


async def test_utilized_credit_without_withdrawals_fails_the_utilized_check(
    sessionmaker: Sessions, book: SeededBook
):
    await execute(
        sessionmaker,
        "UPDATE merchant_credits SET utilized_amount = 5 WHERE merchant_id = :id",
        id=book.idle_merchant.id,
    )

    violations = assert_only_failed(await audit(sessionmaker), checks.MERCHANT_UTILIZED)

    assert violations == [
        f"merchant {book.idle_merchant.id}: utilized 5.00"
        " != QUEUED+PROCESSING+SUCCESS withdrawals 0.00"
    ]


PAYOUT_BREAKS = {
    "success_without_payout": (
        "DELETE FROM settlement_payouts WHERE withdrawal_id = :success",
        "is SUCCESS for 30.00 but settlement has no payout for it",
    ),
    "success_refused_by_settlement": (
        "UPDATE settlement_payouts SET status = 'REFUSED', bank_reference = NULL"
        " WHERE withdrawal_id = :success",
        "is SUCCESS for 30.00 but its payout is REFUSED for 30.00",
    ),
    "success_paid_a_different_amount": (
        "UPDATE settlement_payouts SET amount = 31.00 WHERE withdrawal_id = :success",
        "is SUCCESS for 30.00 but its payout is PAID for 31.00",
    ),
    "failed_but_paid": (
        "UPDATE settlement_payouts SET status = 'PAID', bank_reference = 'bank-ref'"
        " WHERE withdrawal_id = :failed",
        "is FAILED for 40.00 but its payout is PAID for 40.00",
    ),
    "paid_for_an_unknown_withdrawal": (
        "INSERT INTO settlement_payouts (withdrawal_id, merchant_id, account_id, amount,"
        " bank_account, status, bank_reference) SELECT :unknown, merchant_id, account_id, 9.99,"
        " bank_account, 'PAID', 'bank-ref' FROM settlement_payouts WHERE withdrawal_id = :success",
        "is PAID for 9.99 but has no withdrawal",
    ),
}


@pytest.mark.parametrize("case", list(PAYOUT_BREAKS))
async def test_settlement_payouts_disagreeing_with_withdrawals_fail_the_payout_check(
    sessionmaker: Sessions, book: SeededBook, case: str
):
    sql, expected = PAYOUT_BREAKS[case]
    await execute(
        sessionmaker,
        sql,
        success=book.withdrawals["SUCCESS"].id,
        failed=book.withdrawals["FAILED"].id,
        unknown=uuid.uuid4(),
    )

    violations = assert_only_failed(await audit(sessionmaker), checks.PAYOUTS)

    assert len(violations) == 1
    assert expected in violations[0]


async def test_violations_are_capped_but_counted(sessionmaker: Sessions, book: SeededBook):
    await execute(
        sessionmaker,
        "INSERT INTO ledger_entries (tx_id, kind, account, amount)"
        " SELECT gen_random_uuid(), 'TOPUP', account, amount FROM generate_series(1, 25),"
        " (VALUES ('FUNDING', -1.00), ('POOL', 1.00)) AS legs (account, amount)",
        "UPDATE credit_pool SET available = available + 25",
    )

    report = await audit(sessionmaker)

    result = report.check(checks.BALANCED_TRANSACTIONS.name)
    assert report.failed == [result.name]
    assert (len(result.violations), result.violation_count) == (20, 50)
    assert "          ... and 30 more" in report.render()
