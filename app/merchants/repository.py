from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Merchant, MerchantCredit, User, WalletAccount


@dataclass(frozen=True)
class MerchantRow:
    """A merchant joined with its user, account and credit line (None before approval)."""

    merchant_id: int
    username: str
    status: str
    bank_account: str
    requested_credit: Decimal
    created_at: datetime
    approved_at: datetime | None
    account_id: UUID | None
    credit_limit: Decimal | None
    utilized_amount: Decimal | None


def _merchant_rows():  # untyped: SQLAlchemy 2.1 Select generics add nothing here
    return (
        select(
            Merchant.id.label("merchant_id"),
            User.username,
            Merchant.status,
            Merchant.bank_account,
            Merchant.requested_credit,
            Merchant.created_at,
            Merchant.approved_at,
            WalletAccount.id.label("account_id"),
            MerchantCredit.credit_limit,
            MerchantCredit.utilized_amount,
        )
        .join(User, User.id == Merchant.user_id)
        .outerjoin(WalletAccount, WalletAccount.merchant_id == Merchant.id)
        .outerjoin(MerchantCredit, MerchantCredit.merchant_id == Merchant.id)
    )


async def get_row(session: AsyncSession, *, merchant_id: int) -> MerchantRow | None:
    row = (await session.execute(_merchant_rows().where(Merchant.id == merchant_id))).first()
    return MerchantRow(**row._mapping) if row else None


async def list_rows(
    session: AsyncSession, *, status: str | None, before_id: int | None, limit: int
) -> list[MerchantRow]:
    query = _merchant_rows().order_by(Merchant.id.desc()).limit(limit)
    if status is not None:
        query = query.where(Merchant.status == status)
    if before_id is not None:
        query = query.where(Merchant.id < before_id)
    return [MerchantRow(**row._mapping) for row in await session.execute(query)]


async def lock_merchant(session: AsyncSession, *, merchant_id: int) -> Merchant | None:
    # Serialises approvals and status changes of one merchant.
    return await session.scalar(
        select(Merchant).where(Merchant.id == merchant_id).with_for_update()
    )


async def lock_credit_line(session: AsyncSession, *, merchant_id: int) -> MerchantCredit | None:
    # The same row lock a withdrawal takes: a new limit is checked against settled usage.
    return await session.scalar(
        select(MerchantCredit).where(MerchantCredit.merchant_id == merchant_id).with_for_update()
    )
