"""Funding the pool and reading where its money is; services never commit."""

import uuid
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from app.ledger import repository
from app.ledger.errors import InvalidAmount
from app.ledger.schemas import PoolSummary, TopUpResult
from app.models import LedgerAccount, LedgerKind
from app.money import parse_amount

# Which way each step of a withdrawal moves money (ARCHITECTURE section 3): (from, to). The
# money path writes these inside PostgreSQL (alembic/versions/0004); a test of the migrated
# functions keeps the two in step (tests/integration/test_money_functions.py), and the test
# factories write them through record_withdrawal_move.
WITHDRAWAL_MOVES = {
    LedgerKind.RESERVE: (LedgerAccount.POOL, LedgerAccount.IN_FLIGHT),
    LedgerKind.SETTLE: (LedgerAccount.IN_FLIGHT, LedgerAccount.PAID_OUT),
    LedgerKind.RELEASE: (LedgerAccount.IN_FLIGHT, LedgerAccount.POOL),
}


async def record_withdrawal_move(
    session: AsyncSession,
    *,
    kind: LedgerKind,
    tx_id: uuid.UUID,
    amount: Decimal,
    withdrawal_id: uuid.UUID,
) -> None:
    """Write one step of a withdrawal as a balanced ledger transaction."""
    debit, credit = WITHDRAWAL_MOVES[kind]
    await repository.insert_transfer(
        session,
        tx_id=tx_id,
        kind=kind,
        debit_account=debit,
        credit_account=credit,
        amount=amount,
        withdrawal_id=withdrawal_id,
    )


async def top_up_pool(session: AsyncSession, *, amount: Decimal) -> TopUpResult:
    """Move outside money into the pool (FUNDING -> POOL) in the caller's transaction."""
    # The API validates amounts too; this guards callers that bypass it (CLI, jobs, tests),
    # because NUMERIC(18, 2) would otherwise round 0.001 to a zero entry or reject it late.
    if not amount.is_finite() or amount <= 0:
        raise InvalidAmount(f"a top-up must be greater than 0, got {amount}")
    try:
        amount = parse_amount(amount)
    except ValueError as exc:
        raise InvalidAmount(str(exc)) from None
    tx_id = uuid.uuid4()
    await repository.insert_transfer(
        session,
        tx_id=tx_id,
        kind=LedgerKind.TOPUP,
        debit_account=LedgerAccount.FUNDING,
        credit_account=LedgerAccount.POOL,
        amount=amount,
    )
    # The pool row last: its lock serialises every reservation, so hold it only until commit.
    available = await repository.add_to_pool(session, amount=amount)
    return TopUpResult(tx_id=tx_id, pool_available=available)


async def pool_summary(session: AsyncSession) -> PoolSummary:
    """The pool row and the ledger balances behind it."""
    balances = await repository.account_balances(session)
    return PoolSummary(
        available=await repository.pool_available(session),
        in_flight=balances[LedgerAccount.IN_FLIGHT],
        paid_out=balances[LedgerAccount.PAID_OUT],
        # Subtracted from zero rather than negated: -Decimal("0.00") would print as "-0.00".
        funded=Decimal("0.00") - balances[LedgerAccount.FUNDING],
    )
