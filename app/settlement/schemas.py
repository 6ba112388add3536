"""Settlement's wire format: what the core sends and what it gets back."""

import math
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from app.bank_accounts import BankAccount
from app.models.settlement import PayoutStatus
from app.money import Amount, MoneyOut
from app.settlement.repository import Order, Payout


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

    def order(self) -> Order:
        return Order(
            withdrawal_id=self.withdrawal_id,
            merchant_id=self.merchant_id,
            account_id=self.account_id,
            amount=self.amount,
            bank_account=self.account,
        )


class WithdrawBatchRequest(BaseModel):
    """Payout orders for distinct withdrawals, at most `BATCH_MAX` (a setting) of them."""

    model_config = ConfigDict(extra="forbid")

    orders: list[WithdrawRequest] = Field(min_length=1)

    @field_validator("orders")
    @classmethod
    def _distinct_withdrawals(cls, orders: list[WithdrawRequest]) -> list[WithdrawRequest]:
        # Each order is one withdrawal's only answer in the batch: a repeated id has no place.
        if len({order.withdrawal_id for order in orders}) != len(orders):
            raise ValueError("each order must be for a different withdrawal_id")
        return orders


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


class PayoutError(BaseModel):
    """Why one order of a batch got no payout state: the order differs from the first one
    received for its withdrawal (PAYOUT_MISMATCH), or the bank did not answer for it
    (BANK_UNAVAILABLE: the payout is PENDING; send it again). Never a refusal."""

    withdrawal_id: UUID
    status: Literal["ERROR"] = "ERROR"
    code: Literal["PAYOUT_MISMATCH", "BANK_UNAVAILABLE"]
    detail: str


class WithdrawBatchOut(BaseModel):
    """One result per order, in the order sent."""

    results: list[PayoutOut | PayoutError]
