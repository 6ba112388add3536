"""Ledger results inside the core, and their API shapes (money as "10.00" strings)."""

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from app.money import Amount, MoneyOut


@dataclass(frozen=True, slots=True)
class TopUpResult:
    tx_id: uuid.UUID
    pool_available: Decimal
    replayed: bool = False  # the answer of an earlier top-up with the same Idempotency-Key


@dataclass(frozen=True, slots=True)
class PoolSummary:
    available: Decimal  # the pool row
    in_flight: Decimal  # reserved for payouts whose outcome is not final
    paid_out: Decimal  # settled with the bank
    funded: Decimal  # every top-up ever (minus the FUNDING balance)


class TopUpIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Amount
    # The funding transfer's id: one top-up per reference, ever.
    reference: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None


class TopUpOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    pool_available: MoneyOut


class PoolSummaryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    available: MoneyOut
    in_flight: MoneyOut
    paid_out: MoneyOut
    funded: MoneyOut
