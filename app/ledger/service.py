"""Funding the pool and reading where its money is; services never commit."""

import uuid
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from app.idempotency.service import IdempotencyKeyReused, fingerprint
from app.ledger import repository
from app.ledger.errors import InvalidAmount, PoolLimitExceeded, TopUpReferenceUsed
from app.ledger.schemas import PoolSummary, TopUpResult
from app.models import LedgerAccount, LedgerKind
from app.money import COLUMN_MAX, format_amount, parse_amount

# Which way each step of a withdrawal moves money (ARCHITECTURE section 3): (from, to). Every
# writer takes its entries from withdrawal_entries: the batched money path
# (app/withdrawals/reserve.py, finish.py) and the test factories alike.
WITHDRAWAL_MOVES = {
    LedgerKind.RESERVE: (LedgerAccount.POOL, LedgerAccount.IN_FLIGHT),
    LedgerKind.SETTLE: (LedgerAccount.IN_FLIGHT, LedgerAccount.PAID_OUT),
    LedgerKind.RELEASE: (LedgerAccount.IN_FLIGHT, LedgerAccount.POOL),
}


def withdrawal_entries(
    *, kind: LedgerKind, tx_id: uuid.UUID, amount: Decimal, withdrawal_id: uuid.UUID
) -> list[dict[str, object]]:
    """The two balanced ledger rows of one step of a withdrawal."""
    # A non-positive amount would silently reverse the direction of the move.
    if not amount.is_finite() or amount <= 0:
        raise ValueError(f"a withdrawal moves a positive amount, got {amount}")
    debit, credit = WITHDRAWAL_MOVES[kind]
    leg = {"tx_id": tx_id, "kind": str(kind), "withdrawal_id": withdrawal_id}
    return [
        {**leg, "account": str(debit), "amount": -amount},
        {**leg, "account": str(credit), "amount": amount},
    ]


async def record_withdrawal_move(
    session: AsyncSession,
    *,
    kind: LedgerKind,
    tx_id: uuid.UUID,
    amount: Decimal,
    withdrawal_id: uuid.UUID,
) -> None:
    """Write one step of a withdrawal as a balanced ledger transaction."""
    await repository.insert_entries(
        session,
        withdrawal_entries(kind=kind, tx_id=tx_id, amount=amount, withdrawal_id=withdrawal_id),
    )


async def top_up_pool(
    session: AsyncSession,
    *,
    amount: Decimal,
    key: str | None = None,
    reference: str | None = None,
) -> TopUpResult:
    """Move outside money into the pool (FUNDING -> POOL) in the caller's transaction, at
    most once per Idempotency-Key and per reference: a repeated key replays its answer."""
    # The API validates amounts too; this guards callers that bypass it (CLI, jobs, tests),
    # because NUMERIC(18, 2) would otherwise round 0.001 to a zero entry or reject it late.
    if not amount.is_finite() or amount <= 0:
        raise InvalidAmount(f"a top-up must be greater than 0, got {amount}")
    try:
        amount = parse_amount(amount)
    except ValueError as exc:
        raise InvalidAmount(str(exc)) from None
    request_hash = fingerprint({"amount": format_amount(amount), "reference": reference})
    tx_id = uuid.uuid4()
    # Lock 1: the top-up's own row (its key and reference), then the ledger, the pool last.
    claimed = await repository.claim_top_up(
        session, tx_id=tx_id, amount=amount, key=key, request_hash=request_hash, reference=reference
    )
    if not claimed:
        return await _earlier_top_up(
            session, key=key, reference=reference, request_hash=request_hash
        )
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
    # Under the pool row's lock no reservation or release moves money between the pool and
    # in flight, and a release returns in-flight money to the pool: the two together must fit
    # in NUMERIC(18, 2), or a later release could not be booked.
    if available is None or available + await repository.in_flight_total(session) > COLUMN_MAX:
        raise PoolLimitExceeded(
            f"the pool and the money in flight may hold at most {format_amount(COLUMN_MAX)}"
        )
    await repository.store_top_up_answer(session, tx_id=tx_id, pool_available=available)
    return TopUpResult(tx_id=tx_id, pool_available=available)


async def _earlier_top_up(
    session: AsyncSession, *, key: str | None, reference: str | None, request_hash: str
) -> TopUpResult:
    """The key or reference belongs to a committed top-up: replay it, or refuse."""
    earlier = await repository.find_top_up(session, key=key) if key is not None else None
    if earlier is not None:
        if earlier.request_hash != request_hash:
            raise IdempotencyKeyReused(
                "this key was used with a different top-up", extra={"tx_id": str(earlier.tx_id)}
            )
        assert earlier.pool_available is not None  # stored in the transaction that claimed it
        return TopUpResult(
            tx_id=earlier.tx_id, pool_available=earlier.pool_available, replayed=True
        )
    earlier = await repository.find_top_up(session, reference=reference)
    if earlier is None:  # pragma: no cover - the conflicting claim committed before we looked
        raise RuntimeError("a top-up claim conflicted with a row that is gone")
    raise TopUpReferenceUsed(
        f"reference {reference!r} already funded top-up {earlier.tx_id}",
        extra={"tx_id": str(earlier.tx_id)},
    )


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
