"""Every table in one import point (Alembic reads Base.metadata from here)."""

from app.models.base import Base
from app.models.idempotency import IdempotencyKey
from app.models.identity import (
    Merchant,
    MerchantCredit,
    MerchantStatus,
    RefreshFamily,
    User,
    WalletAccount,
)
from app.models.money import (
    CreditPool,
    LedgerAccount,
    LedgerEntry,
    LedgerKind,
    PoolTopUp,
    Withdrawal,
    WithdrawalStatus,
)
from app.models.requestlog import ApiRequestLog
from app.models.settlement import PayoutStatus, SettlementPayout

__all__ = [
    "ApiRequestLog",
    "Base",
    "CreditPool",
    "IdempotencyKey",
    "LedgerAccount",
    "LedgerEntry",
    "LedgerKind",
    "Merchant",
    "MerchantCredit",
    "MerchantStatus",
    "PayoutStatus",
    "PoolTopUp",
    "RefreshFamily",
    "SettlementPayout",
    "User",
    "WalletAccount",
    "Withdrawal",
    "WithdrawalStatus",
]
