"""Settlement's wire format: what the core sends and what it gets back."""

from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.models.settlement import PayoutStatus
from app.money import Amount, MoneyOut
from app.settlement.repository import Payout

# A bank account number as the core stores it: IBAN-like, upper-case letters and digits.
BankAccount = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{5,34}$")]
# Strict: a JSON integer only (no "5", no true); bounded to the column's BIGINT.
MerchantId = Annotated[int, Field(strict=True, gt=0, le=2**63 - 1)]


class WithdrawRequest(BaseModel):
    """One payout order from the core; `withdrawal_id` is its idempotency key."""

    model_config = ConfigDict(extra="forbid")

    withdrawal_id: UUID
    merchant_id: MerchantId
    account_id: UUID
    amount: Amount
    account: BankAccount


class PayoutOut(BaseModel):
    """A payout's state. POST answers only PAID or REFUSED; GET may also answer PENDING.

    PENDING means settlement received the payout but has no bank outcome recorded yet (a
    transient bank failure or a crash mid-call); POST the same request again to complete it.
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
