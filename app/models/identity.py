import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
    Uuid,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAt, Money


class MerchantStatus(StrEnum):
    PENDING_APPROVAL = "PENDING_APPROVAL"
    APPROVED = "APPROVED"
    SUSPENDED = "SUSPENDED"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # In every token; raised by a password change or a suspension, which voids older tokens.
    token_version: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[CreatedAt]


class RefreshFamily(Base):
    """The refresh tokens descended from one login: only the newest one works.

    A refresh presenting an older one means two parties hold the family's tokens (one stole
    them), so the whole family is revoked.
    """

    __tablename__ = "refresh_families"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    current_jti: Mapped[str] = mapped_column(String(32))
    revoked_at: Mapped[datetime | None]
    created_at: Mapped[CreatedAt]


class Merchant(Base):
    __tablename__ = "merchants"
    __table_args__ = (
        CheckConstraint(
            "status IN ('PENDING_APPROVAL', 'APPROVED', 'SUSPENDED')", name="status_known"
        ),
        CheckConstraint("requested_credit > 0", name="requested_credit_positive"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    bank_account: Mapped[str] = mapped_column(String(34))
    requested_credit: Mapped[Money]
    created_at: Mapped[CreatedAt]
    approved_at: Mapped[datetime | None]


class WalletAccount(Base):
    """The merchant's account id, created on first approval and sent to settlement."""

    __tablename__ = "wallet_accounts"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    merchant_id: Mapped[int] = mapped_column(
        ForeignKey("merchants.id", ondelete="CASCADE"), unique=True
    )
    created_at: Mapped[CreatedAt]


class MerchantCredit(Base):
    """A merchant's credit line; the row is locked FOR UPDATE by every reservation."""

    __tablename__ = "merchant_credits"
    __table_args__ = (
        CheckConstraint("credit_limit >= 0", name="limit_not_negative"),
        CheckConstraint(
            "utilized_amount >= 0 AND utilized_amount <= credit_limit", name="utilized_within_limit"
        ),
    )

    merchant_id: Mapped[int] = mapped_column(
        ForeignKey("merchants.id", ondelete="CASCADE"), primary_key=True
    )
    credit_limit: Mapped[Money]
    utilized_amount: Mapped[Money] = mapped_column(server_default="0")
    updated_at: Mapped[CreatedAt]
