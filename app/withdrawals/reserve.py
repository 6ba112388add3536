"""Transaction 1 for a batch of withdrawals (ARCHITECTURE section 4.2), SQLAlchemy Core.

Lock order, as everywhere on the money path: the idempotency keys (sorted), the merchants'
credit lines (by merchant id), the pool row last, held only until COMMIT.
"""

from collections.abc import Sequence
from decimal import Decimal
from typing import cast

from sqlalchemy import (
    BigInteger,
    Numeric,
    String,
    Table,
    Uuid,
    bindparam,
    delete,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.auth.errors import InvalidToken
from app.db import money_connection
from app.errors import money_statement
from app.idempotency.repository import StoredKey
from app.idempotency.service import IdempotencyKeyReused, Replay, replay_or_raise
from app.ledger import service as ledger
from app.merchants.errors import MerchantNotApproved
from app.models import (
    CreditPool,
    IdempotencyKey,
    LedgerEntry,
    LedgerKind,
    Merchant,
    MerchantCredit,
    MerchantStatus,
    User,
    WalletAccount,
    Withdrawal,
)
from app.money import format_amount
from app.withdrawals import books
from app.withdrawals.answers import answer_for, pending_body
from app.withdrawals.decide import (
    Decision,
    Line,
    Outcome,
    ReserveRequest,
    decide,
    reserved_total,
)
from app.withdrawals.errors import InsufficientMerchantCredit, InsufficientPool
from app.withdrawals.repository import WithdrawalRow, row_columns, withdrawal_row

_keys = cast(Table, IdempotencyKey.__table__)
_credits = cast(Table, MerchantCredit.__table__)
_merchants = cast(Table, Merchant.__table__)
_users = cast(Table, User.__table__)
_accounts = cast(Table, WalletAccount.__table__)
_pool = cast(Table, CreditPool.__table__)
_withdrawals = cast(Table, Withdrawal.__table__)
_entries = cast(Table, LedgerEntry.__table__)
POOL_ROW_ID = 1

POOL_SHORT = "the credit pool cannot cover this withdrawal right now"

# Executemany of one statement (SQLAlchemy's "insertmanyvalues" sends it as one multi-row
# INSERT, in the given order): compiled once and cached, where a .values([...]) of N rows is a
# new statement to compile for every batch. The other multi-row writes join unnested arrays.
_CLAIM_KEYS = pg_insert(_keys).on_conflict_do_nothing().returning(_keys.c.merchant_id, _keys.c.key)

ReserveResult = WithdrawalRow | Replay | InsufficientMerchantCredit | InsufficientPool


class _Redo(Exception):
    """The optimistic first pass guessed wrong: the pool, read without its lock, covered the
    batch but its conditional UPDATE did not; or a claimed key (purged after its retention)
    still names a withdrawal. All is undone and the careful pass runs."""


async def reserve_batch(
    engine: AsyncEngine, requests: Sequence[ReserveRequest]
) -> list[ReserveResult | BaseException]:
    """Transaction 1 for the batch; every outcome is committed when this returns.

    Refusals for credit or pool are results (final, stored on their keys); a refusal that
    stores nothing (not approved, a key taken or reused) is the member's exception.
    """
    async with money_connection(engine) as conn, money_statement():
        # Optimistic first: the pool is locked last, for its UPDATE only, and no lookup is made
        # for withdrawals under purged keys. The careful pass locks the pool before deciding
        # and looks them up, so it never has to be undone.
        for careful in (False, True):
            try:
                async with conn.begin():
                    return await _transaction(conn, list(requests), careful)
            except _Redo:
                continue
    raise AssertionError("unreachable: the careful pass is never undone")  # pragma: no cover


async def reserve_in(
    conn: AsyncConnection, requests: Sequence[ReserveRequest]
) -> list[ReserveResult | BaseException]:
    """Transaction 1's work inside the caller's open transaction (the test factories use it),
    the careful way, so it never has to be undone."""
    return await _transaction(conn, list(requests), careful=True)


async def _transaction(
    conn: AsyncConnection, batch: list[ReserveRequest], careful: bool
) -> list[ReserveResult | BaseException]:
    refused = await _refused_holders(conn, batch)
    requests = [r for r in batch if r not in refused]
    results = iter(await _reserve(conn, requests, careful) if requests else [])
    return [refused[r] if r in refused else next(results) for r in batch]


async def _refused_holders(
    conn: AsyncConnection, requests: list[ReserveRequest]
) -> dict[ReserveRequest, BaseException]:
    """The members whose token no longer speaks for an approved merchant: refused before they
    claim anything, as the per-request caller lookup did (one statement for the batch)."""
    merchant_ids = sorted({r.merchant_id for r in requests if r.holder is not None})
    if not merchant_ids:
        return {}
    result = await conn.execute(
        select(_merchants.c.id, _merchants.c.user_id, _merchants.c.status, _users.c.token_version)
        .join(_users, _users.c.id == _merchants.c.user_id)
        .where(_merchants.c.id.in_(merchant_ids))
    )
    holders = {row.id: row for row in result}
    refused: dict[ReserveRequest, BaseException] = {}
    for request in requests:
        if request.holder is None:
            continue
        found = holders.get(request.merchant_id)
        if found is None or found.user_id != request.holder.user_id:
            refused[request] = InvalidToken("the token's user no longer exists")
        elif found.token_version != request.holder.token_version:
            refused[request] = InvalidToken("the token was revoked (password change or suspension)")
        elif found.status != MerchantStatus.APPROVED:
            refused[request] = MerchantNotApproved(f"merchant status is {found.status}")
    return refused


async def _reserve(
    conn: AsyncConnection, requests: list[ReserveRequest], careful: bool
) -> list[ReserveResult | BaseException]:
    claimed = await _claim_keys(conn, requests)
    taken = await _stored_answers(conn, {r.key_id for r in requests} - claimed)
    mine = [r for r in requests if r.key_id in claimed]
    lines, pool_seen = await _lock_lines(conn, {r.merchant_id for r in mine})
    existing = await _withdrawals_with_keys(conn, {r.key_id for r in mine}) if careful else {}
    decisions = decide(mine, lines=lines, keys_with_withdrawal=set(existing), pool_available=None)
    total = reserved_total(mine, decisions)
    if careful or (total > 0 and (pool_seen is None or pool_seen < total)):
        # Short (or careful): lock the pool now, after the lines, and decide against what it has.
        available = await conn.scalar(
            select(_pool.c.available).where(_pool.c.id == POOL_ROW_ID).with_for_update()
        )
        decisions = decide(
            mine,
            lines=lines,
            keys_with_withdrawal=set(existing),
            pool_available=available or Decimal("0.00"),
        )
    reserved = await _write(conn, mine, decisions, lines)
    return _results(
        requests, claimed, taken, dict(zip(mine, decisions, strict=True)), reserved, existing
    )


async def _claim_keys(
    conn: AsyncConnection, requests: list[ReserveRequest]
) -> set[tuple[int, str]]:
    """Lock 1: the keys, in sorted order. A key another transaction holds waits here until it
    commits; ON CONFLICT then skips it (its stored answer is read next)."""
    first_hash: dict[tuple[int, str], str] = {}
    for request in requests:
        first_hash.setdefault(request.key_id, request.request_hash)
    rows = [
        {"merchant_id": merchant_id, "key": key, "request_hash": first_hash[(merchant_id, key)]}
        for merchant_id, key in sorted(first_hash)
    ]
    result = await conn.execute(_CLAIM_KEYS, rows)
    return {(row.merchant_id, row.key) for row in result}


async def _stored_answers(
    conn: AsyncConnection, key_ids: set[tuple[int, str]]
) -> dict[tuple[int, str], StoredKey]:
    """The keys other transactions hold, as committed (read committed: a fresh snapshot)."""
    if not key_ids:
        return {}
    result = await conn.execute(
        select(
            _keys.c.merchant_id,
            _keys.c.key,
            _keys.c.request_hash,
            _keys.c.response_status,
            _keys.c.response_body,
        ).where(tuple_(_keys.c.merchant_id, _keys.c.key).in_(sorted(key_ids)))
    )
    return {
        (row.merchant_id, row.key): StoredKey(
            row.request_hash, row.response_status, row.response_body
        )
        for row in result
    }


async def _lock_lines(
    conn: AsyncConnection, merchant_ids: set[int]
) -> tuple[dict[int, Line], Decimal | None]:
    """Lock 2: the merchants' lines, by merchant id; approval and headroom are read under it.
    The pool's available amount comes along unlocked, a hint for whether the batch fits."""
    if not merchant_ids:
        return {}, None
    pool_hint = select(_pool.c.available).where(_pool.c.id == POOL_ROW_ID).scalar_subquery()
    result = await conn.execute(
        select(
            _credits.c.merchant_id,
            (_credits.c.credit_limit - _credits.c.utilized_amount).label("headroom"),
            _merchants.c.status,
            _merchants.c.bank_account,
            _accounts.c.id.label("account_id"),
            pool_hint.label("pool_available"),
        )
        .join(_merchants, _merchants.c.id == _credits.c.merchant_id)
        .join(_accounts, _accounts.c.merchant_id == _credits.c.merchant_id)
        .where(_credits.c.merchant_id.in_(sorted(merchant_ids)))
        .order_by(_credits.c.merchant_id)
        .with_for_update(of=_credits)
    )
    lines, pool_seen = {}, None
    for row in result:
        pool_seen = row.pool_available
        lines[row.merchant_id] = Line(
            merchant_id=row.merchant_id,
            status=row.status,
            bank_account=row.bank_account,
            account_id=row.account_id,
            headroom=row.headroom,
        )
    return lines, pool_seen


async def _withdrawals_with_keys(
    conn: AsyncConnection, key_ids: set[tuple[int, str]]
) -> dict[tuple[int, str], WithdrawalRow]:
    """Withdrawals that still carry a claimed key (the key itself was purged after retention)."""
    if not key_ids:
        return {}
    w = _withdrawals.c
    result = await conn.execute(
        select(*row_columns()).where(tuple_(w.merchant_id, w.idempotency_key).in_(sorted(key_ids)))
    )
    return {(row.merchant_id, row.idempotency_key): withdrawal_row(row) for row in result}


async def _write(
    conn: AsyncConnection,
    requests: list[ReserveRequest],
    decisions: list[Decision],
    lines: dict[int, Line],
) -> dict[ReserveRequest, WithdrawalRow]:
    """The batch's writes in one statement: withdrawals, reserve entries, line updates, key
    answers and the pool row (the one lock it takes, so it comes last in lock order)."""
    chosen = [r for r, d in zip(requests, decisions, strict=True) if d.outcome == Outcome.RESERVED]
    answers: list[books.KeyAnswer] = []
    given_up = []
    for r, d in zip(requests, decisions, strict=True):
        if d.outcome == Outcome.RESERVED:
            # Both modes: until transaction 2 (or after a crash before it) a replay learns the
            # withdrawal id instead of "in use".
            answers.append(
                (r.key_id, 202, pending_body(r.withdrawal_id, r.status), r.withdrawal_id)
            )
        elif d.outcome == Outcome.INSUFFICIENT_CREDIT:
            answers.append((r.key_id, 409, _credit_refusal(d).problem(), None))
        elif d.outcome == Outcome.INSUFFICIENT_POOL:
            answers.append((r.key_id, 409, InsufficientPool(POOL_SHORT).problem(), None))
        elif d.outcome in (Outcome.NOT_APPROVED, Outcome.WITHDRAWAL_EXISTS):
            given_up.append(r.key_id)  # nothing decided: the key stays free for a retry
    reserved = await _reserve_rows(conn, chosen, lines, answers) if chosen else {}
    if not chosen:
        await books.store_answers(conn, answers)
    given_up = [key_id for key_id in given_up if key_id not in {a[0] for a in answers}]
    if given_up:
        await conn.execute(
            delete(_keys).where(tuple_(_keys.c.merchant_id, _keys.c.key).in_(sorted(set(given_up))))
        )
    return reserved


_new = books.unnest(
    ("w_ids", "id", Uuid),
    ("w_merchant_ids", "merchant_id", BigInteger),
    ("w_account_ids", "account_id", Uuid),
    ("w_amounts", "amount", Numeric(18, 2)),
    ("w_bank_accounts", "bank_account", String),
    ("w_statuses", "status", String),
    ("w_keys", "idempotency_key", String),
    ("w_reserve_tx_ids", "reserve_tx_id", Uuid),
)
_inserted = (
    pg_insert(_withdrawals)
    .from_select([c.name for c in _new.c], select(*_new.c))
    # A key purged after its retention may still name a withdrawal: it is left out here,
    # and the careful pass answers it (WITHDRAWAL_EXISTS).
    .on_conflict_do_nothing()  # (merchant_id, idempotency_key) is unique
    .returning(*row_columns())
    .cte("inserted")
)
_taken_from_pool = (
    update(_pool)
    .where(_pool.c.id == POOL_ROW_ID, _pool.c.available >= bindparam("pool_total"))
    .values(available=_pool.c.available - bindparam("pool_total"), updated_at=func.now())
    .returning(_pool.c.id)
    .cte("taken_from_pool")
)
# The parts of one statement see one snapshot and touch different rows: the keys and the
# lines are already locked by this transaction, the withdrawals and entries are new, and the
# entries are joined to the withdrawals actually inserted.
_RESERVE_ROWS = select(
    *_inserted.c,
    select(func.count()).select_from(_taken_from_pool).scalar_subquery().label("pool_taken"),
).add_cte(
    books.insert_entries_of(_inserted),
    books.ADD_UTILIZED.cte("lines"),
    books.STORE_ANSWERS.cte("answers"),
)


async def _reserve_rows(
    conn: AsyncConnection,
    chosen: list[ReserveRequest],
    lines: dict[int, Line],
    answers: list[books.KeyAnswer],
) -> dict[ReserveRequest, WithdrawalRow]:
    entries = [
        entry
        for r in chosen
        for entry in ledger.withdrawal_entries(
            kind=LedgerKind.RESERVE,
            tx_id=r.reserve_tx_id,
            amount=r.amount,
            withdrawal_id=r.withdrawal_id,
        )
    ]
    taken: dict[int, Decimal] = {}
    for r in chosen:
        taken[r.merchant_id] = taken.get(r.merchant_id, Decimal("0.00")) + r.amount
    result = await conn.execute(
        _RESERVE_ROWS,
        {
            "w_ids": [r.withdrawal_id for r in chosen],
            "w_merchant_ids": [r.merchant_id for r in chosen],
            "w_account_ids": [lines[r.merchant_id].account_id for r in chosen],
            "w_amounts": [r.amount for r in chosen],
            "w_bank_accounts": [lines[r.merchant_id].bank_account for r in chosen],
            "w_statuses": [str(r.status) for r in chosen],
            "w_keys": [r.key for r in chosen],
            "w_reserve_tx_ids": [r.reserve_tx_id for r in chosen],
            **books.entry_parameters(entries),
            # The CHECK (0 <= utilized <= limit) is the last guard if the arithmetic were wrong.
            **books.utilized_parameters(sorted(taken.items())),
            **books.answer_parameters(answers),
            "pool_total": sum((r.amount for r in chosen), Decimal("0.00")),
        },
    )
    rows = result.all()
    if len(rows) < len(chosen) or rows[0].pool_taken == 0:
        raise _Redo()
    by_id = {row.id: withdrawal_row(row) for row in rows}
    return {r: by_id[r.withdrawal_id] for r in chosen}


def _credit_refusal(decision: Decision) -> InsufficientMerchantCredit:
    assert decision.headroom is not None
    available = format_amount(decision.headroom)
    return InsufficientMerchantCredit(
        f"available credit is {available}", extra={"available_credit": available}
    )


def _results(
    requests: list[ReserveRequest],
    claimed: set[tuple[int, str]],
    taken: dict[tuple[int, str], StoredKey],
    decided: dict[ReserveRequest, Decision],
    reserved: dict[ReserveRequest, WithdrawalRow],
    existing: dict[tuple[int, str], WithdrawalRow],
) -> list[ReserveResult | BaseException]:
    """Each member's answer, in the batch's order."""
    stored_here: dict[tuple[int, str], StoredKey] = {}
    results: list[ReserveResult | BaseException] = []
    for request in requests:
        decision = decided.get(request)
        outcome = Outcome.KEY_TAKEN if decision is None else decision.outcome
        result: ReserveResult | BaseException
        if outcome == Outcome.KEY_TAKEN:
            stored = (
                stored_here.get(request.key_id)
                if request.key_id in claimed
                else taken.get(request.key_id)
            )
            result = _replay(stored, request)
        elif outcome == Outcome.NOT_APPROVED:
            result = MerchantNotApproved("the merchant is not approved for withdrawals")
        elif outcome == Outcome.WITHDRAWAL_EXISTS:
            result = _replay_withdrawal(existing[request.key_id], request)
        elif outcome == Outcome.INSUFFICIENT_CREDIT:
            assert decision is not None
            result = _credit_refusal(decision)
            stored_here[request.key_id] = StoredKey(request.request_hash, 409, result.problem())
        elif outcome == Outcome.INSUFFICIENT_POOL:
            result = InsufficientPool(POOL_SHORT)
            stored_here[request.key_id] = StoredKey(request.request_hash, 409, result.problem())
        else:
            result = reserved[request]
            body = pending_body(request.withdrawal_id, request.status)
            stored_here[request.key_id] = StoredKey(request.request_hash, 202, body)
        results.append(result)
    return results


def _replay(stored: StoredKey | None, request: ReserveRequest) -> Replay | BaseException:
    try:
        return replay_or_raise(stored, request_hash=request.request_hash)
    except Exception as exc:  # the member's own refusal (reused, or still in use)
        return exc


def _replay_withdrawal(
    withdrawal: WithdrawalRow, request: ReserveRequest
) -> Replay | BaseException:
    """A key past its retention: the withdrawal that carries it answers for it."""
    if withdrawal.amount != request.amount:
        return IdempotencyKeyReused(
            f"this key belongs to withdrawal {withdrawal.id} of another amount",
            extra={"withdrawal_id": str(withdrawal.id)},
        )
    answer = answer_for(withdrawal)
    return Replay(status=answer.status, body=answer.body)
