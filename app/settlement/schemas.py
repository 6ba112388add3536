"""Settlement's wire format: what the core sends and what it gets back."""

import math
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from app.bank_accounts import BankAccount
from app.models.settlement import PayoutStatus
from app.money import Amount, MoneyOut
from app.settlement.repository import Payout


def _whole_number(value: Any) -> Any:
    # JSON Schema counts 5.0 as an integer, so the document allows it; "5" and true stay out.
    if isinstance(value, float | Decimal) and math.isfinite(value) and value == int(value):
        return int(value)
    return value


# Strict: a JSON integer only (no "5", no true). Below 2^53, where JSON numbers stay exact in
# every client (JavaScript included).
MerchantId = Annotated[int, Field(strict=True, gt=0, le=2**53 - 1), BeforeValidator(_whole_number)]


class WithdrawRequest(BaseModel):
    """One payout order from the core; `withdrawal_id` is its idempotency key."""

    model_config = ConfigDict(extra="forbid")

    withdrawal_id: UUID
    merchant_id: MerchantId
    account_id: UUID
    amount: Amount
    account: BankAccount


class PayoutOut(BaseModel):
    """A payout's state: PAID, REFUSED, or PENDING (POST answers that one with 202).

    PENDING means settlement received the payout but has no bank outcome recorded yet:
    another request is in the bank call for it (POST answers 202), or a transient bank
    failure or a crash mid-call left it so; POST the same request again to complete it.
    """

    withdrawal_id: UUID
    status: PayoutStatus
    amount: MoneyOut
    bank_reference: str | None = Field(description="the bank's transfer id when PAID")
    failure_code: str | None = Field(description="why the bank refused, when REFUSED")

    @classmethod
    def of(cls, payout: Payout) -> "PayoutOut":
        return cls(
            withdrawal_id=payout.withdrawal_id,
            status=payout.status,
            amount=payout.amount,
            bank_reference=payout.bank_reference,
            failure_code=payout.failure_code,
        )
