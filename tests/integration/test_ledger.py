import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.ledger import repository, service
from app.ledger.errors import InvalidAmount
from app.ledger.schemas import PoolSummaryOut, TopUpOut
from app.models import LedgerAccount, LedgerEntry, LedgerKind, WithdrawalStatus
from tests.support.factories import create_merchant, create_withdrawal, fund_pool

pytestmark = pytest.mark.usefixtures("clean_db")

Sessions = async_sessionmaker[AsyncSession]


async def _entries(sessionmaker: Sessions) -> list[Any]:
    async with sessionmaker() as session:
        query = select(LedgerEntry).order_by(LedgerEntry.id)
        return list((await session.scalars(query)).all())


async def _pool(sessionmaker: Sessions) -> Decimal:
    async with sessionmaker() as session:
        return await repository.pool_available(session)


async def test_top_up_writes_two_balanced_entries_and_raises_the_pool(sessionmaker: Sessions):
    async with sessionmaker() as session, session.begin():
        result = await service.top_up_pool(session, amount=Decimal("150.50"))

    assert result.pool_available == Decimal("150.50")
    entries = await _entries(sessionmaker)
    assert [(e.kind, e.account, e.amount) for e in entries] == [
        (LedgerKind.TOPUP, LedgerAccount.FUNDING, Decimal("-150.50")),
        (LedgerKind.TOPUP, LedgerAccount.POOL, Decimal("150.50")),
    ]
    assert {e.tx_id for e in entries} == {result.tx_id}
    assert all(e.withdrawal_id is None for e in entries)
    assert await _pool(sessionmaker) == Decimal("150.50")


async def test_top_ups_add_up_in_the_pool_and_the_ledger(sessionmaker: Sessions):
    async with sessionmaker() as session, session.begin():
        first = await fund_pool(session, "100.00")
        second = await fund_pool(session, Decimal("0.01"))
        balances = await repository.account_balances(session)

    assert first.tx_id != second.tx_id
    assert second.pool_available == Decimal("100.01")
    assert balances == {
        LedgerAccount.FUNDING: Decimal("-100.01"),
        LedgerAccount.POOL: Decimal("100.01"),
        LedgerAccount.IN_FLIGHT: Decimal("0.00"),
        LedgerAccount.PAID_OUT: Decimal("0.00"),
    }


async def test_top_up_is_part_of_the_callers_transaction(sessionmaker: Sessions):
    with pytest.raises(RuntimeError, match="caller gives up"):
        async with sessionmaker() as session, session.begin():
            await service.top_up_pool(session, amount=Decimal("10.00"))
            raise RuntimeError("caller gives up")

    assert await _entries(sessionmaker) == []
    assert await _pool(sessionmaker) == Decimal("0.00")


@pytest.mark.parametrize("amount", ["0", "0.00", "-5.00", "0.001", "NaN", "Infinity", "1E+16"])
async def test_top_up_rejects_invalid_amounts_and_writes_nothing(
    sessionmaker: Sessions, amount: str
):
    async with sessionmaker() as session, session.begin():
        with pytest.raises(InvalidAmount) as raised:
            await service.top_up_pool(session, amount=Decimal(amount))

    assert (raised.value.status, raised.value.code) == (422, "INVALID_AMOUNT")
    assert await _entries(sessionmaker) == []
    assert await _pool(sessionmaker) == Decimal("0.00")


async def test_pool_summary_of_an_empty_ledger_is_all_zero(sessionmaker: Sessions):
    async with sessionmaker() as session:
        summary = await service.pool_summary(session)

    assert PoolSummaryOut.model_validate(summary).model_dump(mode="json") == {
        "available": "0.00",
        "in_flight": "0.00",
        "paid_out": "0.00",
        "funded": "0.00",
    }


async def test_pool_summary_follows_top_ups_and_withdrawals(sessionmaker: Sessions):
    async with sessionmaker() as session, session.begin():
        await fund_pool(session, "200.00")
        await fund_pool(session, "50.00")
        merchant = await create_merchant(session, credit_limit=Decimal("500.00"))
        for amount, status in [
            ("30.00", WithdrawalStatus.SUCCESS),
            ("20.00", WithdrawalStatus.PROCESSING),
            ("15.00", WithdrawalStatus.QUEUED),
            ("40.00", WithdrawalStatus.FAILED),
        ]:
            await create_withdrawal(session, merchant=merchant, amount=amount, status=status)

    async with sessionmaker() as session:
        summary = await service.pool_summary(session)

    assert summary.available == Decimal("185.00")  # 250 - 30 - 20 - 15; the failed 40 came back
    assert summary.in_flight == Decimal("35.00")
    assert summary.paid_out == Decimal("30.00")
    assert summary.funded == Decimal("250.00")
    assert PoolSummaryOut.model_validate(summary).model_dump(mode="json")["funded"] == "250.00"


async def test_top_up_out_serialises_money_as_a_string(sessionmaker: Sessions):
    async with sessionmaker() as session, session.begin():
        result = await fund_pool(session, "10")

    assert TopUpOut.model_validate(result).model_dump(mode="json") == {"pool_available": "10.00"}


async def test_a_transfer_is_one_insert_statement(engine: AsyncEngine, sessionmaker: Sessions):
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        async with sessionmaker() as session, session.begin():
            await service.top_up_pool(session, amount=Decimal("5.00"))
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)

    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT")]
    # The top-up's own row (its key and reference), then both ledger entries in one INSERT.
    assert len(inserts) == 2
    assert "pool_topups" in inserts[0]
    assert "ledger_entries" in inserts[1]
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(LedgerEntry)) == 2


@pytest.mark.parametrize(
    ("amount", "debit", "credit"),
    [
        (Decimal("0"), LedgerAccount.POOL, LedgerAccount.IN_FLIGHT),
        (Decimal("-1.00"), LedgerAccount.POOL, LedgerAccount.IN_FLIGHT),
        (Decimal("1.00"), LedgerAccount.POOL, LedgerAccount.POOL),
    ],
)
async def test_insert_transfer_refuses_reversed_or_circular_transfers(
    sessionmaker: Sessions, amount: Decimal, debit: LedgerAccount, credit: LedgerAccount
):
    async with sessionmaker() as session:
        with pytest.raises(ValueError, match="transfer"):
            await repository.insert_transfer(
                session,
                tx_id=uuid.uuid4(),
                kind=LedgerKind.RESERVE,
                debit_account=debit,
                credit_account=credit,
                amount=amount,
            )
