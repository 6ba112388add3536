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
from typing import Protocol
from uuid import UUID

import asyncpg

from app.models.settlement import PayoutStatus

# Accounts the simulated bank always refuses: a deterministic way to exercise refusals.
REJECTED_ACCOUNT_PREFIX = "IRREJECT"
ACCOUNT_REJECTED = "ACCOUNT_REJECTED"

# Built once, run on asyncpg's pool (see app/settlement/repository.py).
_INSERT_TRANSFER = """
INSERT INTO settlement_bank_transfers
    (reference, amount, account, status, bank_reference, failure_code)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (reference) DO NOTHING
RETURNING amount, account, status, bank_reference, failure_code
"""
_GET_TRANSFER = """
SELECT amount, account, status, bank_reference, failure_code
FROM settlement_bank_transfers
WHERE reference = $1
"""


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

    def __init__(self, db: asyncpg.Pool, *, latency_ms: int = 0, failure_rate: float = 0.0):
        self._db = db
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
    ) -> asyncpg.Record:
        # Each statement is its own transaction: the transfer is durable as its INSERT returns.
        # Concurrent calls with one reference race here: the primary key lets exactly one
        # insert win (the others wait for it to commit, then insert nothing).
        inserted = await self._db.fetchrow(
            _INSERT_TRANSFER,
            reference,
            amount,
            account,
            proposed.status.value,
            proposed.bank_reference,
            proposed.failure_code,
        )
        if inserted is not None:
            return inserted
        # A separate statement, so a new READ COMMITTED snapshot: it sees the winner.
        return await self._db.fetchrow(_GET_TRANSFER, reference)
