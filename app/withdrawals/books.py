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
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import unnest
from app.models import IdempotencyKey, MerchantCredit

_keys = cast(Table, IdempotencyKey.__table__)
_credits = cast(Table, MerchantCredit.__table__)

KeyAnswer = tuple[tuple[int, str], int, dict[str, Any], UUID | None]


_delta = unnest(("merchant_ids", "merchant_id", BigInteger), ("deltas", "delta", Numeric(18, 2)))
_ADD_UTILIZED = (
    update(_credits)
    .where(_credits.c.merchant_id == _delta.c.merchant_id)
    .values(utilized_amount=_credits.c.utilized_amount + _delta.c.delta)
)

_answer = unnest(
    ("merchant_ids", "merchant_id", BigInteger),
    ("keys", "key", String),
    ("statuses", "status", Integer),
    ("bodies", "body", JSONB),
    ("withdrawal_ids", "withdrawal_id", Uuid),
)
_STORE_ANSWERS = (
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


async def add_utilized(conn: AsyncConnection, deltas: list[tuple[int, Decimal]]) -> None:
    """utilized_amount += delta per merchant (the lines are locked by the caller, in id order)."""
    if not deltas:
        return
    await conn.execute(
        _ADD_UTILIZED,
        {"merchant_ids": [m for m, _ in deltas], "deltas": [delta for _, delta in deltas]},
    )


async def store_answers(conn: AsyncConnection, answers: list[KeyAnswer]) -> None:
    """The answer each key's replays get from now on (and the withdrawal it belongs to)."""
    if not answers:
        return
    await conn.execute(
        _STORE_ANSWERS,
        {
            "merchant_ids": [merchant_id for (merchant_id, _), _, _, _ in answers],
            "keys": [key for (_, key), _, _, _ in answers],
            "statuses": [status for _, status, _, _ in answers],
            "bodies": [body for _, _, body, _ in answers],
            "withdrawal_ids": [wid for _, _, _, wid in answers],
        },
    )
