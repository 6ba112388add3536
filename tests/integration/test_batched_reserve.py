"""A batch answers every member exactly as the same members one at a time, in arrival order.

The same ReserveRequests (ids included) run once as one batch and once as batches of one on
identical books; every answer and the final books must match, and the explicit outcomes are
asserted too, so a rule broken the same way in both runs still fails.
"""

import uuid
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.idempotency.service import IdempotencyKeyReused, Replay, fingerprint
from app.merchants.errors import MerchantNotApproved
from app.models import MerchantStatus, WithdrawalStatus
from app.withdrawals.decide import ReserveRequest
from app.withdrawals.errors import InsufficientMerchantCredit, InsufficientPool
from app.withdrawals.finish import FinishRequest, finish_batch
from app.withdrawals.repository import WithdrawalRow
from app.withdrawals.reserve import reserve_batch
from tests.conftest import empty_database
from tests.support.factories import create_merchant, create_withdrawal, fund_pool
from tests.support.money import assert_books_balance

pytestmark = pytest.mark.usefixtures("clean_db")


async def seed(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    """The same books every time (identities restart with every emptying)."""
    async with sessionmaker() as session, session.begin():
        await fund_pool(session, "600.00")
        a = await create_merchant(session, credit_limit=Decimal("100.00"))
        b = await create_merchant(session, status=MerchantStatus.PENDING_APPROVAL)
        c = await create_merchant(session, credit_limit=Decimal("20.00"))
        d = await create_merchant(session, credit_limit=Decimal("1000.00"))
        s = await create_merchant(session, status=MerchantStatus.SUSPENDED)
        await create_withdrawal(session, merchant=a, amount="10.00", idempotency_key="done")
    return {"a": a.id, "b": b.id, "c": c.id, "d": d.id, "s": s.id}


def request(merchant_id: int, amount: str, key: str, index: int) -> ReserveRequest:
    # Fixed ids, so both runs write (and answer with) the same withdrawal ids.
    return ReserveRequest(
        merchant_id=merchant_id,
        key=key,
        request_hash=fingerprint({"amount": f"{Decimal(amount):.2f}"}),
        amount=Decimal(amount),
        status=WithdrawalStatus.QUEUED,
        withdrawal_id=_uuid(index, 1),
        reserve_tx_id=_uuid(index, 2),
    )


def _uuid(index: int, kind: int) -> uuid.UUID:
    return uuid.UUID(int=(index << 8) | kind)


def describe(result: object) -> tuple[Any, ...]:
    """An answer as data: its class and everything a merchant would be told."""
    if isinstance(result, WithdrawalRow):
        return ("RESERVED", result.id, result.merchant_id, result.amount, result.status)
    if isinstance(result, Replay):
        body = {k: v for k, v in result.body.items() if k not in ("tx_id", "bank_reference")}
        if not str(body.get("withdrawal_id", "0")).startswith("00000000"):
            body["withdrawal_id"] = "seeded"  # made by the seed, a new id in every run
        return ("REPLAY", result.status, tuple(sorted(body.items())))
    assert isinstance(result, Exception), result
    problem = result.problem() if hasattr(result, "problem") else {}
    return (type(result).__name__, tuple(sorted(problem.items())))


async def books(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        return {
            "pool": await conn.scalar(text("SELECT available FROM credit_pool")),
            "lines": (
                await conn.execute(
                    text("SELECT merchant_id, utilized_amount FROM merchant_credits ORDER BY 1")
                )
            ).all(),
            "withdrawals": (
                await conn.execute(
                    text(
                        "SELECT id, merchant_id, amount, status FROM withdrawals"
                        " WHERE idempotency_key <> 'done' ORDER BY id"
                    )
                )
            ).all(),
            "keys": (
                await conn.execute(
                    text(
                        "SELECT merchant_id, key, response_status, response_body->>'code',"
                        " withdrawal_id FROM idempotency_keys WHERE key <> 'done' ORDER BY 1, 2"
                    )
                )
            ).all(),
        }


async def one_at_a_time(engine: AsyncEngine, requests: list[ReserveRequest]) -> list[object]:
    return [(await reserve_batch(engine, [r]))[0] for r in requests]


async def test_a_mixed_batch_answers_each_member_as_one_at_a_time(
    engine: AsyncEngine,
    owner_engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    shared_settlement_app: FastAPI,
) -> None:
    ids = await seed(sessionmaker)
    a, b, c, d, s = ids["a"], ids["b"], ids["c"], ids["d"], ids["s"]
    members = [
        (a, "10.00", "a1"),
        (b, "5.00", "b1"),  # pending: not approved
        (c, "15.00", "c1"),
        (c, "10.00", "c2"),  # credit short: 5.00 left
        (a, "10.00", "a1"),  # the same key twice: the first one's 202
        (d, "600.00", "d1"),  # the pool is short mid-batch
        (a, "20.00", "a2"),  # fits after the pool refusal
        (a, "11.00", "a1"),  # the same key with another body
        (a, "30.00", "a3"),  # the same merchant a third time
        (a, "10.00", "done"),  # a finished key: its stored 200
        (s, "1.00", "s1"),  # suspended: not approved
        (d, "400.00", "d2"),
    ]
    requests = [request(m, amount, key, i) for i, (m, amount, key) in enumerate(members)]

    batched = await reserve_batch(engine, requests)
    batched_books = await books(engine)
    await assert_books_balance(sessionmaker)
    await empty_database(owner_engine, shared_settlement_app)
    assert await seed(sessionmaker) == ids
    single = await one_at_a_time(engine, requests)

    assert [describe(r) for r in batched] == [describe(r) for r in single]
    assert batched_books == await books(engine)
    await assert_books_balance(sessionmaker)

    kinds = [type(r) for r in batched]
    assert kinds == [
        WithdrawalRow,
        MerchantNotApproved,
        WithdrawalRow,
        InsufficientMerchantCredit,
        Replay,
        InsufficientPool,
        WithdrawalRow,
        IdempotencyKeyReused,
        WithdrawalRow,
        Replay,
        MerchantNotApproved,
        WithdrawalRow,
    ]
    credit_refusal = batched[3]
    assert isinstance(credit_refusal, InsufficientMerchantCredit)
    assert credit_refusal.extra == {"available_credit": "5.00"}
    first_replay, done_replay = batched[4], batched[9]
    assert isinstance(first_replay, Replay) and isinstance(done_replay, Replay)
    assert first_replay.status == 202
    assert first_replay.body == {
        "withdrawal_id": str(requests[0].withdrawal_id),
        "status": "QUEUED",
    }
    assert done_replay.status == 200 and done_replay.body["status"] == "SUCCESS"
    # 600 - 10 (done) - 10 - 15 - 20 - 30 - 400 = 115 left; d1's 600 never fitted.
    assert batched_books["pool"] == Decimal("115.00")


class StatementCounter:
    """Counts the statements an engine sends (each one a round trip; BEGIN and COMMIT too)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        self._engine = engine.sync_engine

    def _seen(self, *_args: Any) -> None:
        self.count += 1

    def __enter__(self) -> "StatementCounter":
        event.listen(self._engine, "before_cursor_execute", self._seen)
        event.listen(self._engine, "begin", self._seen)
        event.listen(self._engine, "commit", self._seen)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self._engine, "before_cursor_execute", self._seen)
        event.remove(self._engine, "begin", self._seen)
        event.remove(self._engine, "commit", self._seen)


async def _round_trips(engine: AsyncEngine, run: Any) -> int:
    with StatementCounter(engine) as counter:
        await run
    return counter.count


async def test_a_batch_sends_as_many_statements_as_a_single_withdrawal(
    engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with sessionmaker() as session, session.begin():
        await fund_pool(session, "10000.00")
        merchants = [
            await create_merchant(session, credit_limit=Decimal("1000.00")) for _ in range(4)
        ]

    def batch(size: int, offset: int) -> list[ReserveRequest]:
        return [
            request(merchants[i % 4].id, "1.00", f"rt-{offset + i}", offset + i)
            for i in range(size)
        ]

    one = await _round_trips(engine, reserve_batch(engine, batch(1, 0)))
    many = await _round_trips(engine, reserve_batch(engine, batch(64, 100)))
    reserved = await reserve_batch(engine, batch(64, 300))
    rows = [r for r in reserved if isinstance(r, WithdrawalRow)]
    assert len(rows) == 64
    finish_one = await _round_trips(engine, finish_batch(engine, [_final(rows[0], paid=True)]))
    finish_many = await _round_trips(
        engine, finish_batch(engine, [_final(r, paid=i % 2 == 0) for i, r in enumerate(rows[1:])])
    )
    print(f"round trips: reserve 1={one} 64={many}; finish 1={finish_one} 63={finish_many}")
    assert many == one  # the batch's statements do not grow with its size
    assert one == 5  # BEGIN, the keys, the lines, every write in one statement, COMMIT
    assert finish_many <= finish_one + 3  # releases add the lines and the pool row
    assert finish_one == 4  # BEGIN, the withdrawals locked, the writes in one statement, COMMIT


def _final(withdrawal: WithdrawalRow, *, paid: bool) -> FinishRequest:
    status = WithdrawalStatus.SUCCESS if paid else WithdrawalStatus.FAILED
    return FinishRequest(
        withdrawal_id=withdrawal.id,
        status=status,
        final_tx_id=uuid.uuid4(),
        response_status=200 if paid else 422,
        response_body={"status": str(status)},
        bank_reference="BNK" if paid else None,
        failure_code=None if paid else "REFUSED",
    )


async def test_members_whose_token_no_longer_holds_are_refused_alone_and_claim_nothing(
    engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    from dataclasses import replace

    from app.auth.errors import InvalidToken
    from app.auth.tokens import TokenHolder

    ids = await seed(sessionmaker)
    async with engine.connect() as conn:
        owners = text("SELECT m.id, u.id FROM merchants m JOIN users u ON u.id = m.user_id")
        users = dict((await conn.execute(owners)).all())
        revoke = text("UPDATE users SET token_version = 3 WHERE id = :u")
        await conn.execute(revoke, {"u": users[ids["d"]]})
        await conn.commit()
    holder = {name: TokenHolder(users[ids[name]], 0) for name in ("a", "b", "d")}
    batch = [
        replace(request(ids["a"], "5.00", "valid", 1), holder=holder["a"]),
        replace(request(ids["d"], "5.00", "stale-version", 2), holder=holder["d"]),
        replace(request(ids["a"], "5.00", "other-user", 3), holder=holder["d"]),
        replace(request(ids["b"], "5.00", "not-approved", 4), holder=holder["b"]),
        replace(request(ids["d"], "6.00", "current", 5), holder=TokenHolder(users[ids["d"]], 3)),
    ]

    results = await reserve_batch(engine, batch)

    assert [type(r).__name__ for r in results] == [
        "WithdrawalRow",
        "InvalidToken",
        "InvalidToken",
        "MerchantNotApproved",
        "WithdrawalRow",
    ]
    assert isinstance(results[1], InvalidToken) and "revoked" in str(results[1].detail)
    after = await books(engine)
    assert [k[1] for k in after["keys"]] == ["valid", "current"]
    assert after["pool"] == Decimal("600.00") - Decimal("10.00") - Decimal("11.00")
    await assert_books_balance(sessionmaker)
