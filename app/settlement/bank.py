"""The bank behind settlement: a Protocol any adapter meets, and a simulated bank.

A bank call is idempotent on its `reference`: asking again with the same reference returns the
first transfer's result and never moves money twice. Settlement relies on that to re-drive a
payout whose outcome it never recorded (a crash or a transient failure mid-call).
"""

import asyncio
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, cast
from uuid import UUID

from sqlalchemy import Numeric, RowMapping, String, Table, Uuid, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import unnest
from app.models.settlement import PayoutStatus, SettlementBankTransfer
from app.settlement.repository import autocommit

# Accounts the simulated bank always refuses: a deterministic way to exercise refusals.
REJECTED_ACCOUNT_PREFIX = "IRREJECT"
ACCOUNT_REJECTED = "ACCOUNT_REJECTED"

_transfers = cast(Table, SettlementBankTransfer.__table__)
_TRANSFER = (
    _transfers.c.reference,
    _transfers.c.amount,
    _transfers.c.account,
    _transfers.c.status,
    _transfers.c.bank_reference,
    _transfers.c.failure_code,
)
# Built once, executed with arrays, on AUTOCOMMIT connections (as in
# app/settlement/repository.py). Inserted in reference order, so two batches with common
# references wait on each other's uncommitted rows in one order and never deadlock.
_proposed = unnest(
    ("refs", "reference", Uuid),
    ("to_amounts", "amount", Numeric(18, 2)),
    ("to_accounts", "account", String),
    ("outcomes", "status", String),
    ("outcome_references", "bank_reference", String),
    ("outcome_failures", "failure_code", String),
)
_INSERT_TRANSFERS = (
    insert(_transfers)
    .from_select(
        [column.name for column in _TRANSFER],
        select(*(_proposed.c[column.name] for column in _TRANSFER)).order_by(_proposed.c.reference),
    )
    .on_conflict_do_nothing(index_elements=[_transfers.c.reference])
    .returning(*_TRANSFER)
)
_GET_TRANSFERS = select(*_TRANSFER).where(
    _transfers.c.reference == func.any(bindparam("refs", type_=ARRAY(Uuid)))
)


@dataclass(frozen=True, slots=True)
class Transfer:
    """One transfer asked of the bank; `reference` is its idempotency key."""

    reference: UUID
    amount: Decimal
    account: str


@dataclass(frozen=True, slots=True)
class BankResult:
    """A definite outcome: PAID with the bank's reference, or REFUSED with a failure code."""

    status: PayoutStatus
    bank_reference: str | None = None
    failure_code: str | None = None


class BankUnavailable(Exception):
    """A transient failure: the outcome is unknown; ask again with the same reference."""


class BankReferenceConflict(Exception):
    """The reference was already used for a different amount or account (a caller bug)."""


class Bank(Protocol):
    async def pay_batch(self, transfers: Sequence[Transfer]) -> list[BankResult | BankUnavailable]:
        """Make each transfer once per reference; one answer per transfer, in order:
        its result, or BankUnavailable where the bank's outcome is unknown."""
        ...


class SimulatedBank:
    """A bank that keeps its transfers in `settlement_bank_transfers`, idempotent on reference.

    `latency_ms` simulates the network round trip, once per call; `failure_rate` (0..1) is the
    fraction of transfers answered BankUnavailable with nothing recorded, for failure injection.
    """

    def __init__(self, engine: AsyncEngine, *, latency_ms: int = 0, failure_rate: float = 0.0):
        self._engine = engine
        self._latency_s = latency_ms / 1000
        self._failure_rate = failure_rate

    async def pay(self, *, reference: UUID, amount: Decimal, account: str) -> BankResult:
        """One transfer (pay_batch of one); raises BankUnavailable if the outcome is unknown."""
        [result] = await self.pay_batch([Transfer(reference, amount, account)])
        if isinstance(result, BankUnavailable):
            raise result
        return result

    async def pay_batch(self, transfers: Sequence[Transfer]) -> list[BankResult | BankUnavailable]:
        """Transfer each once per reference and answer the stored result of that one transfer."""
        if self._latency_s > 0:
            # The caller holds no transaction here, so latency never holds a row lock.
            await asyncio.sleep(self._latency_s)
        # Failure injection only; not security-sensitive randomness.
        sent = [t for t in transfers if random.random() >= self._failure_rate]  # noqa: S311
        stored = await self._transfer_once(sent) if sent else {}
        results: list[BankResult | BankUnavailable] = []
        for transfer in transfers:
            row = stored.get(transfer.reference)
            if row is None:
                results.append(BankUnavailable("simulated transient bank failure"))
                continue
            if row["amount"] != transfer.amount or row["account"] != transfer.account:
                raise BankReferenceConflict(
                    f"reference {transfer.reference} was used for another transfer"
                )
            results.append(
                BankResult(PayoutStatus(row["status"]), row["bank_reference"], row["failure_code"])
            )
        return results

    async def _transfer_once(self, transfers: Sequence[Transfer]) -> dict[UUID, RowMapping]:
        proposed = sorted(transfers, key=lambda transfer: transfer.reference)
        outcomes = [_propose(transfer.account) for transfer in proposed]
        # Each statement is its own transaction: the transfers are durable as the INSERT
        # returns. Concurrent calls with one reference race here: the primary key lets exactly
        # one insert win (the others wait for it to commit, then insert nothing).
        async with autocommit(self._engine) as conn:
            inserted = await conn.execute(
                _INSERT_TRANSFERS,
                {
                    "refs": [transfer.reference for transfer in proposed],
                    "to_amounts": [transfer.amount for transfer in proposed],
                    "to_accounts": [transfer.account for transfer in proposed],
                    "outcomes": [outcome.status.value for outcome in outcomes],
                    "outcome_references": [outcome.bank_reference for outcome in outcomes],
                    "outcome_failures": [outcome.failure_code for outcome in outcomes],
                },
            )
            stored = {row["reference"]: row for row in inserted.mappings()}
            earlier = [t.reference for t in proposed if t.reference not in stored]
            if earlier:
                # A separate statement, so a new READ COMMITTED snapshot: it sees the winners.
                found = await conn.execute(_GET_TRANSFERS, {"refs": earlier})
                stored |= {row["reference"]: row for row in found.mappings()}
        return stored


def _propose(account: str) -> BankResult:
    if account.startswith(REJECTED_ACCOUNT_PREFIX):
        return BankResult(PayoutStatus.REFUSED, failure_code=ACCOUNT_REJECTED)
    return BankResult(PayoutStatus.PAID, f"BNK-{secrets.token_hex(8).upper()}")
