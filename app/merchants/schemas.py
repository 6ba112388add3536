from datetime import datetime
from decimal import Decimal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from app.merchants.repository import MerchantRow
from app.models import MerchantStatus
from app.money import Amount, MoneyOut

ZERO = Decimal("0.00")


class ApproveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Below 2^53, where JSON numbers stay exact in every client (JavaScript included).
    merchant_id: int = Field(gt=0, le=2**53 - 1)
    credit_limit: Amount


class MeOut(BaseModel):
    merchant_id: int
    username: str
    status: MerchantStatus
    is_approved: bool
    account_id: UUID | None
    bank_account: str
    credit_limit: MoneyOut
    utilized_amount: MoneyOut
    available_credit: MoneyOut

    @classmethod
    def from_row(cls, row: MerchantRow) -> "MeOut":
        limit = row.credit_limit if row.credit_limit is not None else ZERO
        used = row.utilized_amount if row.utilized_amount is not None else ZERO
        return cls(
            merchant_id=row.merchant_id,
            username=row.username,
            status=MerchantStatus(row.status),
            is_approved=row.status == MerchantStatus.APPROVED,
            account_id=row.account_id,
            bank_account=row.bank_account,
            credit_limit=limit,
            utilized_amount=used,
            available_credit=limit - used,
        )


class MerchantOut(MeOut):
    """The admin's view: what the merchant sees plus the application's history."""

    requested_credit: MoneyOut
    created_at: datetime
    approved_at: datetime | None

    @classmethod
    def from_row(cls, row: MerchantRow) -> "MerchantOut":
        return cls(
            **MeOut.from_row(row).model_dump(),
            requested_credit=row.requested_credit,
            created_at=row.created_at,
            approved_at=row.approved_at,
        )


class MerchantPage(BaseModel):
    items: list[MerchantOut]
    next_cursor: str | None
