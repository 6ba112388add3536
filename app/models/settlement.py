import uuid
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAt, Money


class PayoutStatus(StrEnum):
    PAID = "PAID"
    REFUSED = "REFUSED"


class SettlementPayout(Base):
    """Settlement's own record of each payout request, keyed by the core's withdrawal id.

    The primary key is what makes settlement idempotent: one withdrawal, one bank call.
    """

    __tablename__ = "settlement_payouts"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("status IN ('PAID', 'REFUSED')", name="status_known"),
    )

    withdrawal_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(BigInteger)
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    amount: Mapped[Money]
    bank_account: Mapped[str] = mapped_column(String(34))
    status: Mapped[str] = mapped_column(String(16))
    bank_reference: Mapped[str | None] = mapped_column(String(64))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[CreatedAt]
