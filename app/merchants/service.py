"""Merchant lifecycle: approval and credit lines, suspension, and what a merchant sees."""

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import service as auth
from app.merchants import repository
from app.merchants.errors import (
    CreditLimitBelowUtilized,
    InvalidStatusTransition,
    MerchantNotFound,
)
from app.merchants.repository import MerchantRow
from app.models import Merchant, MerchantCredit, MerchantStatus, WalletAccount
from app.pagination import InvalidCursor, decode_cursor, encode_cursor


async def get_merchant(session: AsyncSession, *, merchant_id: int) -> MerchantRow:
    row = await repository.get_row(session, merchant_id=merchant_id)
    if row is None:
        raise MerchantNotFound(f"merchant {merchant_id} does not exist")
    return row


async def list_merchants(
    session: AsyncSession, *, status: MerchantStatus | None, cursor: str | None, limit: int
) -> tuple[list[MerchantRow], str | None]:
    """One page, newest first, and the cursor of the next page (None on the last)."""
    before_id = None
    if cursor is not None:
        (before_id,) = decode_cursor(cursor, arity=1)
        if not isinstance(before_id, int) or isinstance(before_id, bool):
            raise InvalidCursor()
    rows = await repository.list_rows(session, status=status, before_id=before_id, limit=limit + 1)
    next_cursor = encode_cursor(rows[limit - 1].merchant_id) if len(rows) > limit else None
    return rows[:limit], next_cursor


async def _locked(session: AsyncSession, merchant_id: int) -> Merchant:
    merchant = await repository.lock_merchant(session, merchant_id=merchant_id)
    if merchant is None:
        raise MerchantNotFound(f"merchant {merchant_id} does not exist")
    return merchant


async def approve(session: AsyncSession, *, merchant_id: int, credit_limit: Decimal) -> None:
    """First approval opens the account and the credit line; later ones change the limit."""
    merchant = await _locked(session, merchant_id)
    credit = await repository.lock_credit_line(session, merchant_id=merchant_id)
    if credit is None:
        session.add(WalletAccount(merchant_id=merchant_id))
        session.add(MerchantCredit(merchant_id=merchant_id, credit_limit=credit_limit))
    else:
        if credit_limit < credit.utilized_amount:
            raise CreditLimitBelowUtilized(
                f"{credit.utilized_amount} is already utilized; the limit cannot go below it"
            )
        credit.credit_limit = credit_limit
        credit.updated_at = datetime.now(UTC)
    if merchant.status == MerchantStatus.PENDING_APPROVAL:
        merchant.status = MerchantStatus.APPROVED
        merchant.approved_at = datetime.now(UTC)
    await session.flush()


async def suspend(session: AsyncSession, *, merchant_id: int) -> None:
    """Stop an approved merchant's withdrawals (idempotent); its credit line is kept.

    Its tokens are revoked too: whoever holds them (perhaps the reason for the suspension)
    must log in again, and a suspended merchant can read its account but not withdraw.
    """
    merchant = await _locked(session, merchant_id)
    if merchant.status == MerchantStatus.PENDING_APPROVAL:
        raise InvalidStatusTransition("a merchant awaiting approval cannot be suspended")
    merchant.status = MerchantStatus.SUSPENDED
    await session.flush()
    await auth.revoke_tokens(session, user_id=merchant.user_id)


async def reactivate(session: AsyncSession, *, merchant_id: int) -> None:
    """Let a suspended merchant withdraw again (idempotent)."""
    merchant = await _locked(session, merchant_id)
    if merchant.status == MerchantStatus.PENDING_APPROVAL:
        raise InvalidStatusTransition("approve the merchant instead")
    merchant.status = MerchantStatus.APPROVED
    await session.flush()
