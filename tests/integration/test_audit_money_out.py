"""The audit sees each withdrawal's ledger entries and the money that left the bank.

The books are built through the production path (the API, the real settlement app and its
simulated bank), then broken with plain SQL inside a transaction that is rolled back; the
audit runs in that same transaction (`run_checks`).
"""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.audit import checks
from app.audit.report import AuditReport
from app.audit.service import run_audit, run_checks
from app.config import Settings
from app.dev.embedded.process import free_port
from app.main import create_app
from tests.conftest import _client_for, empty_database
from tests.support.api import admin_token, approved_merchant
from tests.support.money import top_up, withdraw

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture(scope="module")
def sessionmaker(owner_sessionmaker: Sessions) -> Sessions:
    """The owner's sessions for this whole module: its tests break the books with plain SQL
    (the ledger, settlement's rows), which no runtime role may do, so the audit here runs as
    the owner too (as the api role: tests/integration/test_audit_cli.py)."""
    return owner_sessionmaker


@dataclass(frozen=True)
class Book:
    success: uuid.UUID  # paid 30.00
    failed: uuid.UUID  # refused by the bank, 40.00 released
    processing: uuid.UUID  # 20.00, settlement never reached


async def _withdrawal_id(response: httpx.Response, status: int) -> uuid.UUID:
    assert response.status_code == status, response.text
    return uuid.UUID(response.json()["withdrawal_id"])


@pytest.fixture(scope="module")
async def book(
    settings: Settings,
    sessionmaker: Sessions,
    owner_engine: AsyncEngine,
    shared_settlement_app: FastAPI,
) -> AsyncIterator[Book]:
    """One book for the whole module: every test here breaks it only in a rolled-back
    transaction. Built once because the API's logins (argon2) make it slow to build."""
    down = settings.model_copy(
        update={"SETTLEMENT_URL": f"http://127.0.0.1:{free_port()}/api/settlement/withdraw"}
    )
    async for api in _client_for(create_app(settings), "http://api.test"):
        admin = await admin_token(api, sessionmaker)
        await top_up(api, admin, "1000.00")
        _, merchant = await approved_merchant(api, admin, credit_limit="500.00")
        _, refused = await approved_merchant(api, admin, bank_account="IRREJECT0001")
        success = await _withdrawal_id(await withdraw(api, merchant, "30.00"), 200)
        failed = await _withdrawal_id(await withdraw(api, refused, "40.00"), 422)
    async for unreachable in _client_for(create_app(down), "http://api.test"):
        processing = await _withdrawal_id(await withdraw(unreachable, merchant, "20.00"), 202)
    async with sessionmaker() as session:
        report = await run_audit(session)
    assert report.ok, report.render()
    assert report.to_reconcile.violation_count == 0
    yield Book(success=success, failed=failed, processing=processing)
    await empty_database(owner_engine, shared_settlement_app)


async def _broken(sessionmaker: Sessions, book: Book, *statements: str) -> AuditReport:
    """Audit the book with `statements` applied, in a transaction that is rolled back."""
    async with sessionmaker() as session:
        await session.begin()
        try:
            for sql in statements:
                await session.execute(
                    text(sql),
                    {
                        "success": book.success,
                        "failed": book.failed,
                        "processing": book.processing,
                        "unknown": uuid.uuid4(),
                    },
                )
            return await run_checks(session)
        finally:
            await session.rollback()


# The append-only trigger refuses every UPDATE of the ledger; these breaks need it off.
UNLOCK_LEDGER = "ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_append_only"

BANK_BREAKS = {
    "success_refused_by_the_bank": (
        "UPDATE settlement_bank_transfers SET status = 'REFUSED', bank_reference = NULL,"
        " failure_code = 'ACCOUNT_REJECTED' WHERE reference = :success",
        "success",
        "is SUCCESS for 30.00",
    ),
    "success_without_a_transfer": (
        "DELETE FROM settlement_bank_transfers WHERE reference = :success",
        "success",
        "but the bank has no transfer for it",
    ),
    "success_paid_another_amount": (
        "UPDATE settlement_bank_transfers SET amount = 30.01 WHERE reference = :success",
        "success",
        "transfer is PAID 30.01 to",
    ),
    "success_paid_to_another_account": (
        "UPDATE settlement_bank_transfers SET account = 'GB29NWBK60161331926819'"
        " WHERE reference = :success",
        "success",
        "to GB29NWBK60161331926819",
    ),
    "failed_but_paid_by_the_bank": (
        "UPDATE settlement_bank_transfers SET status = 'PAID', bank_reference = 'BNK-X',"
        " failure_code = NULL WHERE reference = :failed",
        "failed",
        "is FAILED for 40.00 to IRREJECT0001 but the bank paid 40.00 to IRREJECT0001",
    ),
    "processing_paid_another_amount": (
        "INSERT INTO settlement_bank_transfers (reference, amount, account, status,"
        " bank_reference) SELECT id, 25.00, bank_account, 'PAID', 'BNK-X' FROM withdrawals"
        " WHERE id = :processing",
        "processing",
        "is PROCESSING for 20.00 to DE89370400440532013000 but the bank paid 25.00",
    ),
    "paid_without_a_withdrawal": (
        "INSERT INTO settlement_bank_transfers (reference, amount, account, status,"
        " bank_reference) VALUES (:unknown, 9.99, 'DE89370400440532013000', 'PAID', 'BNK-X')",
        None,
        "paid 9.99 to DE89370400440532013000 but no withdrawal has that id",
    ),
}


@pytest.mark.parametrize("case", list(BANK_BREAKS))
async def test_money_out_of_the_bank_disagreeing_with_withdrawals_fails_the_bank_check(
    sessionmaker: Sessions, book: Book, case: str
) -> None:
    sql, which, expected = BANK_BREAKS[case]

    report = await _broken(sessionmaker, book, sql)

    assert report.failed == [checks.BANK_TRANSFERS.name], report.render()
    [violation] = report.check(checks.BANK_TRANSFERS.name).violations
    assert expected in violation
    if which:
        assert str(getattr(book, which)) in violation


async def test_queued_withdrawal_the_bank_paid_fails_the_bank_check(
    sessionmaker: Sessions, book: Book
) -> None:
    # PROCESSING with a PAID transfer is only "to reconcile"; QUEUED means it was never sent.
    report = await _broken(
        sessionmaker,
        book,
        "INSERT INTO settlement_bank_transfers (reference, amount, account, status,"
        " bank_reference) SELECT id, amount, bank_account, 'PAID', 'BNK-X' FROM withdrawals"
        " WHERE id = :processing",
        "UPDATE withdrawals SET status = 'QUEUED' WHERE id = :processing",
    )

    assert report.failed == [checks.BANK_TRANSFERS.name], report.render()
    [violation] = report.check(checks.BANK_TRANSFERS.name).violations
    assert violation.startswith(f"withdrawal {book.processing} (merchant ")
    assert violation.endswith(
        "is QUEUED for 20.00 to DE89370400440532013000 but the bank paid 20.00"
        " to DE89370400440532013000"
    )


async def test_payout_still_pending_for_a_final_withdrawal_fails_the_payout_check(
    sessionmaker: Sessions, book: Book
) -> None:
    report = await _broken(
        sessionmaker,
        book,
        "UPDATE settlement_payouts SET status = 'PENDING', failure_code = NULL"
        " WHERE withdrawal_id = :failed",
    )

    assert report.failed == [checks.PAYOUTS.name], report.render()
    [violation] = report.check(checks.PAYOUTS.name).violations
    assert violation.startswith(f"withdrawal {book.failed} (merchant ")
    assert "is FAILED for 40.00" in violation
    assert "its payout is PENDING for 40.00" in violation


LEDGER_BREAKS = {
    # Balanced and on the right accounts, so only the per-withdrawal check can see these.
    "release_booked_as_settle": (
        "UPDATE ledger_entries SET kind = 'SETTLE' WHERE withdrawal_id = :failed"
        " AND kind = 'RELEASE'",
        "failed",
        ["RELEASE IN_FLIGHT should be -40.00, the ledger has no entry", "SETTLE IN_FLIGHT"],
    ),
    "reserve_booked_as_release": (
        "UPDATE ledger_entries SET kind = 'RELEASE' WHERE withdrawal_id = :processing"
        " AND kind = 'RESERVE'",
        "processing",
        ["RESERVE POOL should be -20.00, the ledger has no entry", "RELEASE POOL"],
    ),
}


@pytest.mark.parametrize("case", list(LEDGER_BREAKS))
async def test_wrong_entries_for_a_withdrawal_fail_only_the_per_withdrawal_check(
    sessionmaker: Sessions, book: Book, case: str
) -> None:
    sql, which, expected = LEDGER_BREAKS[case]

    report = await _broken(sessionmaker, book, UNLOCK_LEDGER, sql)

    assert report.failed == [checks.WITHDRAWAL_LEDGER.name], report.render()
    violations = report.check(checks.WITHDRAWAL_LEDGER.name).violations
    assert len(violations) == 4  # both legs missing under one kind, both present under another
    for part in expected:
        assert any(part in v and str(getattr(book, which)) in v for v in violations), violations


async def test_settle_of_another_amount_fails_the_per_withdrawal_check(
    sessionmaker: Sessions, book: Book
) -> None:
    report = await _broken(
        sessionmaker,
        book,
        UNLOCK_LEDGER,
        "UPDATE ledger_entries SET amount = amount * 31 / 30 WHERE withdrawal_id = :success"
        " AND kind = 'SETTLE'",
    )

    assert checks.WITHDRAWAL_LEDGER.name in report.failed
    assert report.check(checks.WITHDRAWAL_LEDGER.name).violations == sorted(
        [
            f"withdrawal {book.success} (SUCCESS): SETTLE IN_FLIGHT should be -30.00,"
            " the ledger has [-31.00]",
            f"withdrawal {book.success} (SUCCESS): SETTLE PAID_OUT should be 30.00,"
            " the ledger has [31.00]",
        ]
    )


async def test_settle_of_an_open_withdrawal_fails_the_per_withdrawal_check(
    sessionmaker: Sessions, book: Book
) -> None:
    report = await _broken(
        sessionmaker,
        book,
        "INSERT INTO ledger_entries (tx_id, kind, account, amount, withdrawal_id)"
        " SELECT tx, 'SETTLE', account, amount, :processing FROM gen_random_uuid() AS tx,"
        " (VALUES ('IN_FLIGHT', -20.00), ('PAID_OUT', 20.00)) AS legs (account, amount)",
    )

    assert checks.WITHDRAWAL_LEDGER.name in report.failed
    violations = report.check(checks.WITHDRAWAL_LEDGER.name).violations
    assert violations == [
        f"withdrawal {book.processing} (PROCESSING): SETTLE IN_FLIGHT should be no entry,"
        " the ledger has [-20.00]",
        f"withdrawal {book.processing} (PROCESSING): SETTLE PAID_OUT should be no entry,"
        " the ledger has [20.00]",
    ]


async def test_a_second_reserve_for_a_withdrawal_is_refused_by_the_ledger(
    sessionmaker: Sessions, book: Book
) -> None:
    with pytest.raises(IntegrityError, match="ux_ledger_entries_withdrawal_kind_account"):
        await _broken(
            sessionmaker,
            book,
            "INSERT INTO ledger_entries (tx_id, kind, account, amount, withdrawal_id)"
            " SELECT tx, 'RESERVE', account, amount, :processing FROM gen_random_uuid() AS tx,"
            " (VALUES ('POOL', -20.00), ('IN_FLIGHT', 20.00)) AS legs (account, amount)",
        )
