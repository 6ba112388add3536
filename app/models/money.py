import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAt, Money


class WithdrawalStatus(StrEnum):
    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"


class LedgerAccount(StrEnum):
    FUNDING = "FUNDING"
    POOL = "POOL"
    IN_FLIGHT = "IN_FLIGHT"
    PAID_OUT = "PAID_OUT"


class LedgerKind(StrEnum):
    TOPUP = "TOPUP"
    RESERVE = "RESERVE"
    SETTLE = "SETTLE"
    RELEASE = "RELEASE"


class CreditPool(Base):
    """The operator-funded pool behind every credit line (row id 1)."""

    __tablename__ = "credit_pool"
    __table_args__ = (CheckConstraint("available >= 0", name="available_not_negative"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    available: Mapped[Money] = mapped_column(server_default="0")
    updated_at: Mapped[CreatedAt]


class Withdrawal(Base):
    __tablename__ = "withdrawals"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(
            "status IN ('QUEUED', 'PROCESSING', 'SUCCESS', 'FAILED')", name="status_known"
        ),
        UniqueConstraint("merchant_id", "idempotency_key"),
        Index("ix_withdrawals_merchant_created", "merchant_id", "created_at", "id"),
        Index("ix_withdrawals_status_updated", "status", "updated_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("wallet_accounts.id"))
    amount: Mapped[Money]
    # Where the money goes, fixed when the withdrawal is accepted.
    bank_account: Mapped[str] = mapped_column(String(34))
    status: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    bank_reference: Mapped[str | None] = mapped_column(String(64))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    reserve_tx_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    final_tx_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class LedgerEntry(Base):
    """Append-only double-entry ledger: the entries of one tx_id sum to zero.

    An account's balance is the sum of its signed amounts (money arrives positive).
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_not_zero"),
        CheckConstraint(
            "account IN ('FUNDING', 'POOL', 'IN_FLIGHT', 'PAID_OUT')", name="account_known"
        ),
        CheckConstraint("kind IN ('TOPUP', 'RESERVE', 'SETTLE', 'RELEASE')", name="kind_known"),
        Index("ix_ledger_entries_account", "account"),
        # A withdrawal is reserved, settled or released at most once (ARCHITECTURE §3).
        Index(
            "ux_ledger_entries_withdrawal_kind_account",
            "withdrawal_id",
            "kind",
            "account",
            unique=True,
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    tx_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    account: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Money]
    withdrawal_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("withdrawals.id"), index=True
    )
    created_at: Mapped[CreatedAt]


class PoolTopUp(Base):
    """One top-up of the pool (its ledger transaction is tx_id), with what answers its replays.

    An Idempotency-Key or a funding reference makes it at most once: both are unique.
    """

    __tablename__ = "pool_topups"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    tx_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    amount: Mapped[Money]
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    reference: Mapped[str | None] = mapped_column(String(255), unique=True)
    # The pool's available amount right after this top-up: the answer its key replays.
    pool_available: Mapped[Money | None]
    created_at: Mapped[CreatedAt]
