"""Transaction 2 for a batch of withdrawals: record definite outcomes, exactly once.

Paid -> SUCCESS + settle entries; refused -> FAILED + release entries, the line, then the pool
last. A request, a worker and the reconciler may race to finish one withdrawal: its row lock
serialises them and only the first finds it open; the others answer its real state.
Lock order: the withdrawals (by id), their keys, the lines (by merchant id), the pool row last.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast
from uuid import UUID

from sqlalchemy import String, Table, Uuid, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db import money_connection
from app.errors import money_statement
from app.ledger import service as ledger
from app.models import (
    CreditPool,
    LedgerEntry,
    LedgerKind,
    MerchantCredit,
    Withdrawal,
    WithdrawalStatus,
)
from app.withdrawals import books
from app.withdrawals.repository import WithdrawalRow, row_columns, withdrawal_row

_w = cast(Table, Withdrawal.__table__)
_entries = cast(Table, LedgerEntry.__table__)
_credits = cast(Table, MerchantCredit.__table__)
_pool = cast(Table, CreditPool.__table__)
POOL_ROW_ID = 1
_OPEN = (WithdrawalStatus.QUEUED, WithdrawalStatus.PROCESSING)


@dataclass(frozen=True)
class FinishRequest:
    """A definite outcome for one withdrawal and the answer its key stores with it."""

    withdrawal_id: UUID
    status: WithdrawalStatus  # SUCCESS or FAILED
    final_tx_id: UUID
    response_status: int
    response_body: dict[str, Any]
    bank_reference: str | None = None
    failure_code: str | None = None

    def __post_init__(self) -> None:
        # A payout is SUCCESS only with the bank's reference, FAILED only with its reason.
        if self.status == WithdrawalStatus.SUCCESS:
            ok = self.bank_reference is not None and self.failure_code is None
        elif self.status == WithdrawalStatus.FAILED:
            ok = self.failure_code is not None and self.bank_reference is None
        else:
            ok = False
        if not ok:
            raise ValueError(f"{self.status} needs its bank reference or failure code only")


@dataclass(frozen=True)
class Finish:
    """`finished` is false when the withdrawal was already final (nothing changed)."""

    finished: bool
    withdrawal: WithdrawalRow


class WithdrawalMissing(LookupError):
    """No withdrawal has this id."""


async def finish_batch(
    engine: AsyncEngine, requests: Sequence[FinishRequest]
) -> list[Finish | BaseException]:
    """Transaction 2 for the batch; committed when this returns."""
    async with money_connection(engine) as conn, money_statement(), conn.begin():
        return await _transaction(conn, list(requests))


async def finish_in(
    conn: AsyncConnection, requests: Sequence[FinishRequest]
) -> list[Finish | BaseException]:
    """Transaction 2's work inside the caller's open transaction (the test factories use it)."""
    return await _transaction(conn, list(requests))


async def _transaction(
    conn: AsyncConnection, requests: list[FinishRequest]
) -> list[Finish | BaseException]:
    # Lock 1: the withdrawals, by id; the status read under it decides who finishes.
    ids = sorted({r.withdrawal_id for r in requests})
    result = await conn.execute(
        select(*row_columns()).where(_w.c.id.in_(ids)).order_by(_w.c.id).with_for_update()
    )
    current = {row.id: withdrawal_row(row) for row in result}
    winners: dict[UUID, FinishRequest] = {}
    for request in requests:
        found = current.get(request.withdrawal_id)
        if found is not None and found.status in _OPEN and request.withdrawal_id not in winners:
            winners[request.withdrawal_id] = request
    finished = await _write(conn, list(winners.values()), current) if winners else {}
    results: list[Finish | BaseException] = []
    for request in requests:
        withdrawal_id = request.withdrawal_id
        if winners.get(withdrawal_id) is request:
            results.append(Finish(True, finished[withdrawal_id]))
        elif withdrawal_id in current:
            now = finished.get(withdrawal_id, current[withdrawal_id])
            results.append(Finish(False, now))
        else:
            results.append(WithdrawalMissing(f"no withdrawal {withdrawal_id}"))
    return results


# The batch's rows as arrays unnested into a derived table: one statement whatever the batch's
# size, compiled once (a VALUES list of N rows would be a new statement for every size).
_finished = books.unnest(
    ("ids", "id", Uuid),
    ("statuses", "status", String),
    ("final_tx_ids", "final_tx_id", Uuid),
    ("bank_references", "bank_reference", String),
    ("failure_codes", "failure_code", String),
)
_finish = (
    update(_w)
    .where(_w.c.id == _finished.c.id, _w.c.status.in_([str(s) for s in _OPEN]))
    .values(
        status=_finished.c.status,
        final_tx_id=_finished.c.final_tx_id,
        bank_reference=_finished.c.bank_reference,
        failure_code=_finished.c.failure_code,
        updated_at=func.now(),
    )
    .returning(*row_columns())
    .cte("finished")
)
# One statement: the withdrawals (locked open by this transaction), their settle or release
# entries and the keys' final answers (lock 2: the keys, each touched once).
_FINISH_ROWS = select(*_finish.c).add_cte(
    books.insert_entries_of(_finish), books.STORE_ANSWERS.cte("answers")
)


async def _write(
    conn: AsyncConnection, winners: list[FinishRequest], current: dict[UUID, WithdrawalRow]
) -> dict[UUID, WithdrawalRow]:
    entries = []
    released: dict[int, Decimal] = {}
    for r in winners:
        withdrawal = current[r.withdrawal_id]
        kind = LedgerKind.SETTLE if r.status == WithdrawalStatus.SUCCESS else LedgerKind.RELEASE
        entries += ledger.withdrawal_entries(
            kind=kind, tx_id=r.final_tx_id, amount=withdrawal.amount, withdrawal_id=withdrawal.id
        )
        if kind == LedgerKind.RELEASE:
            released[withdrawal.merchant_id] = (
                released.get(withdrawal.merchant_id, Decimal("0.00")) + withdrawal.amount
            )
    answers: list[books.KeyAnswer] = [
        (
            (current[r.withdrawal_id].merchant_id, current[r.withdrawal_id].idempotency_key),
            r.response_status,
            r.response_body,
            r.withdrawal_id,
        )
        for r in winners
    ]
    result = await conn.execute(
        _FINISH_ROWS,
        {
            "ids": [r.withdrawal_id for r in winners],
            "statuses": [str(r.status) for r in winners],
            "final_tx_ids": [r.final_tx_id for r in winners],
            "bank_references": [r.bank_reference for r in winners],
            "failure_codes": [r.failure_code for r in winners],
            **books.entry_parameters(entries),
            **books.answer_parameters(answers),
        },
    )
    finished = {row.id: withdrawal_row(row) for row in result}
    assert len(finished) == len(winners), "the rows were locked open"
    if released:
        # Lock 3: the lines, by merchant id; then lock 4, last: the pool row.
        await conn.execute(
            select(_credits.c.merchant_id)
            .where(_credits.c.merchant_id.in_(sorted(released)))
            .order_by(_credits.c.merchant_id)
            .with_for_update()
        )
        await books.add_utilized(conn, [(m, -amount) for m, amount in sorted(released.items())])
        total = sum(released.values(), Decimal("0.00"))
        await conn.execute(
            update(_pool)
            .where(_pool.c.id == POOL_ROW_ID)
            .values(available=_pool.c.available + total, updated_at=func.now())
        )
    return finished
