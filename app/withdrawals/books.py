"""Set-based writes both money transactions share: line balances and the keys' answers.

Each is one statement for the whole batch, joined to a VALUES list.
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
    column,
    func,
    update,
    values,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from app.models import IdempotencyKey, MerchantCredit

_keys = cast(Table, IdempotencyKey.__table__)
_credits = cast(Table, MerchantCredit.__table__)

KeyAnswer = tuple[tuple[int, str], int, dict[str, Any], UUID | None]


async def add_utilized(conn: AsyncConnection, deltas: list[tuple[int, Decimal]]) -> None:
    """utilized_amount += delta per merchant (the lines are locked by the caller, in id order)."""
    if not deltas:
        return
    d = values(column("merchant_id", BigInteger), column("delta", Numeric(18, 2)), name="d").data(
        deltas
    )
    await conn.execute(
        update(_credits)
        .where(_credits.c.merchant_id == d.c.merchant_id)
        .values(utilized_amount=_credits.c.utilized_amount + d.c.delta)
    )


async def store_answers(conn: AsyncConnection, answers: list[KeyAnswer]) -> None:
    """The answer each key's replays get from now on (and the withdrawal it belongs to)."""
    if not answers:
        return
    d = values(
        column("merchant_id", BigInteger),
        column("key", String),
        column("status", Integer),
        column("body", JSONB),
        column("withdrawal_id", Uuid),
        name="d",
    ).data(
        [(merchant_id, key, status, body, wid) for (merchant_id, key), status, body, wid in answers]
    )
    await conn.execute(
        update(_keys)
        .where(_keys.c.merchant_id == d.c.merchant_id, _keys.c.key == d.c.key)
        .values(
            response_status=d.c.status,
            response_body=d.c.body,
            completed_at=func.now(),
            # A NULL in VALUES is untyped: cast it, so a refusal keeps the key's (empty) withdrawal.
            withdrawal_id=func.coalesce(sql_cast(d.c.withdrawal_id, Uuid), _keys.c.withdrawal_id),
        )
    )
