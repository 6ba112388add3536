import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, DateTime, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAt, Money


class PayoutStatus(StrEnum):
    PENDING = "PENDING"  # received; the bank's outcome is not recorded yet
    PAID = "PAID"
    REFUSED = "REFUSED"


class SettlementPayout(Base):
    """Settlement's own record of each payout request, keyed by the core's withdrawal id.

    The primary key is what makes settlement idempotent: one withdrawal, one bank reference.
    A row is inserted PENDING before the bank is called and gets its outcome afterwards, so a
    crash in between leaves a PENDING row that the next request re-drives with the same
    reference.
    """

    __tablename__ = "settlement_payouts"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("status IN ('PENDING', 'PAID', 'REFUSED')", name="status_known"),
        CheckConstraint(
            "status <> 'PAID' OR bank_reference IS NOT NULL", name="paid_has_reference"
        ),
    )

    withdrawal_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(BigInteger)
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    amount: Mapped[Money]
    bank_account: Mapped[str] = mapped_column(String(34))
    status: Mapped[str] = mapped_column(String(16))
    bank_reference: Mapped[str | None] = mapped_column(String(64))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    # Until when the request paying a PENDING payout owns its bank call; NULL when nobody does.
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[CreatedAt]


class SettlementBankTransfer(Base):
    """The simulated bank's own book of transfers, keyed by the caller's idempotency reference.

    It stands in for the bank's side of the wire: one reference is one transfer, however many
    times it is asked for. A real bank adapter does not use this table.
    """

    __tablename__ = "settlement_bank_transfers"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("status IN ('PAID', 'REFUSED')", name="status_known"),
        CheckConstraint(
            "status <> 'PAID' OR bank_reference IS NOT NULL", name="paid_has_reference"
        ),
    )

    reference: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    amount: Mapped[Money]
    account: Mapped[str] = mapped_column(String(34))
    status: Mapped[str] = mapped_column(String(16))
    bank_reference: Mapped[str | None] = mapped_column(String(64))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[CreatedAt]
