"""The bank behind settlement: a Protocol any adapter meets, and a simulated bank.

A bank call is idempotent on its `reference`: asking again with the same reference returns the
first transfer's result and never moves money twice. Settlement relies on that to re-drive a
payout whose outcome it never recorded (a crash or a transient failure mid-call).
"""

import asyncio
import random
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, cast
from uuid import UUID

from sqlalchemy import RowMapping, Table, bindparam, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from app.models.settlement import PayoutStatus, SettlementBankTransfer
from app.settlement.repository import autocommit

# Accounts the simulated bank always refuses: a deterministic way to exercise refusals.
REJECTED_ACCOUNT_PREFIX = "IRREJECT"
ACCOUNT_REJECTED = "ACCOUNT_REJECTED"

_transfers = cast(Table, SettlementBankTransfer.__table__)
_TRANSFER = (
    _transfers.c.amount,
    _transfers.c.account,
    _transfers.c.status,
    _transfers.c.bank_reference,
    _transfers.c.failure_code,
)
# Built once, executed with a dict of values, on AUTOCOMMIT connections (as in
# app/settlement/repository.py).
_INSERT_TRANSFER = (
    insert(_transfers)
    .values(
        reference=bindparam("ref"),
        amount=bindparam("to_amount"),
        account=bindparam("to_account"),
        status=bindparam("outcome"),
        bank_reference=bindparam("outcome_reference"),
        failure_code=bindparam("outcome_failure"),
    )
    .on_conflict_do_nothing(index_elements=[_transfers.c.reference])
    .returning(*_TRANSFER)
)
_GET_TRANSFER = select(*_TRANSFER).where(_transfers.c.reference == bindparam("ref"))


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
    async def pay(self, *, reference: UUID, amount: Decimal, account: str) -> BankResult:
        """Transfer `amount` to `account` once per `reference`; raise BankUnavailable if unsure."""
        ...


class SimulatedBank:
    """A bank that keeps its transfers in `settlement_bank_transfers`, idempotent on reference.

    `latency_ms` simulates the network round trip; `failure_rate` (0..1) is the fraction of
    calls that raise BankUnavailable before anything is recorded, for failure injection.
    """

    def __init__(self, engine: AsyncEngine, *, latency_ms: int = 0, failure_rate: float = 0.0):
        self._engine = engine
        self._latency_s = latency_ms / 1000
        self._failure_rate = failure_rate

    async def pay(self, *, reference: UUID, amount: Decimal, account: str) -> BankResult:
        """Transfer once per reference and return the stored result of that one transfer."""
        if self._latency_s > 0:
            # The caller holds no transaction here, so latency never holds a row lock.
            await asyncio.sleep(self._latency_s)
        # Failure injection only; not security-sensitive randomness.
        if random.random() < self._failure_rate:  # noqa: S311
            raise BankUnavailable("simulated transient bank failure")

        if account.startswith(REJECTED_ACCOUNT_PREFIX):
            proposed = BankResult(PayoutStatus.REFUSED, failure_code=ACCOUNT_REJECTED)
        else:
            proposed = BankResult(PayoutStatus.PAID, f"BNK-{secrets.token_hex(8).upper()}")

        stored = await self._transfer_once(reference, amount, account, proposed)
        if stored["amount"] != amount or stored["account"] != account:
            raise BankReferenceConflict(f"reference {reference} was used for another transfer")
        return BankResult(
            PayoutStatus(stored["status"]), stored["bank_reference"], stored["failure_code"]
        )

    async def _transfer_once(
        self, reference: UUID, amount: Decimal, account: str, proposed: BankResult
    ) -> RowMapping:
        # Each statement is its own transaction: the transfer is durable as its INSERT returns.
        # Concurrent calls with one reference race here: the primary key lets exactly one
        # insert win (the others wait for it to commit, then insert nothing).
        async with autocommit(self._engine) as conn:
            inserted = await conn.execute(
                _INSERT_TRANSFER,
                {
                    "ref": reference,
                    "to_amount": amount,
                    "to_account": account,
                    "outcome": proposed.status.value,
                    "outcome_reference": proposed.bank_reference,
                    "outcome_failure": proposed.failure_code,
                },
            )
            row = inserted.mappings().one_or_none()
            if row is not None:
                return row
            # A separate statement, so a new READ COMMITTED snapshot: it sees the winner.
            return (await conn.execute(_GET_TRANSFER, {"ref": reference})).mappings().one()
