"""Set-based writes both money transactions share: line balances and the keys' answers.

Each is one statement for the whole batch, joined to the batch's rows as unnested arrays.
"""

from decimal import Decimal
from typing import Any, cast
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Integer,
    Numeric,
    String,
    Table,
    Uuid,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.selectable import CTE

from app.db import unnest
from app.models import IdempotencyKey, LedgerEntry, MerchantCredit

_keys = cast(Table, IdempotencyKey.__table__)
_entries = cast(Table, LedgerEntry.__table__)
_credits = cast(Table, MerchantCredit.__table__)

KeyAnswer = tuple[tuple[int, str], int, dict[str, Any], UUID | None]


# Parameter names are unique across both statements: transaction 1 runs them as parts of one.
_delta = unnest(
    ("line_merchant_ids", "merchant_id", BigInteger), ("line_deltas", "delta", Numeric(18, 2))
)
ADD_UTILIZED = (
    update(_credits)
    .where(_credits.c.merchant_id == _delta.c.merchant_id)
    .values(utilized_amount=_credits.c.utilized_amount + _delta.c.delta)
)

_answer = unnest(
    ("answer_merchant_ids", "merchant_id", BigInteger),
    ("answer_keys", "key", String),
    ("answer_statuses", "status", Integer),
    ("answer_bodies", "body", JSONB),
    ("answer_withdrawal_ids", "withdrawal_id", Uuid),
)
STORE_ANSWERS = (
    update(_keys)
    .where(_keys.c.merchant_id == _answer.c.merchant_id, _keys.c.key == _answer.c.key)
    .values(
        response_status=_answer.c.status,
        response_body=_answer.c.body,
        completed_at=func.now(),
        # A refusal has no withdrawal: it keeps the key's (empty) one.
        withdrawal_id=func.coalesce(_answer.c.withdrawal_id, _keys.c.withdrawal_id),
    )
)


_entry = unnest(
    ("entry_tx_ids", "tx_id", Uuid),
    ("entry_kinds", "kind", String),
    ("entry_accounts", "account", String),
    ("entry_amounts", "amount", Numeric(18, 2)),
    ("entry_withdrawal_ids", "withdrawal_id", Uuid),
)


def insert_entries_of(withdrawals: CTE) -> CTE:
    """A part of a statement: the ledger entries (app.ledger's rows) of the withdrawals that
    its CTE `withdrawals` wrote (joined to them, so a row it left out gets no entries)."""
    return (
        insert(_entries)
        .from_select(
            [c.name for c in _entry.c],
            select(*_entry.c).join(withdrawals, withdrawals.c.id == _entry.c.withdrawal_id),
        )
        .cte("entries")
    )


def entry_parameters(entries: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {
        f"entry_{name}s": [entry[name] for entry in entries]
        for name in ("tx_id", "kind", "account", "amount", "withdrawal_id")
    }


def utilized_parameters(deltas: list[tuple[int, Decimal]]) -> dict[str, list[Any]]:
    return {
        "line_merchant_ids": [merchant_id for merchant_id, _ in deltas],
        "line_deltas": [delta for _, delta in deltas],
    }


def answer_parameters(answers: list[KeyAnswer]) -> dict[str, list[Any]]:
    return {
        "answer_merchant_ids": [merchant_id for (merchant_id, _), _, _, _ in answers],
        "answer_keys": [key for (_, key), _, _, _ in answers],
        "answer_statuses": [status for _, status, _, _ in answers],
        "answer_bodies": [body for _, _, body, _ in answers],
        "answer_withdrawal_ids": [wid for _, _, _, wid in answers],
    }


async def add_utilized(conn: AsyncConnection, deltas: list[tuple[int, Decimal]]) -> None:
    """utilized_amount += delta per merchant (the lines are locked by the caller, in id order)."""
    if deltas:
        await conn.execute(ADD_UTILIZED, utilized_parameters(deltas))


async def store_answers(conn: AsyncConnection, answers: list[KeyAnswer]) -> None:
    """The answer each key's replays get from now on (and the withdrawal it belongs to)."""
    if answers:
        await conn.execute(STORE_ANSWERS, answer_parameters(answers))
