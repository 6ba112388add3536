"""Small factories that write rows straight to the database for integration tests.

They run in the caller's session and never commit: wrap them in `async with session.begin()`
(or commit yourself) like any other service call. Every argument after the session is
keyword-only, and every default is unique where the schema requires it.
"""

import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.ledger import repository as ledger_repository
from app.ledger import service as ledger
from app.ledger.schemas import TopUpResult
from app.models import (
    LedgerKind,
    Merchant,
    MerchantCredit,
    MerchantStatus,
    PayoutStatus,
    SettlementPayout,
    User,
    WalletAccount,
    Withdrawal,
    WithdrawalStatus,
)
from app.models.settlement import SettlementBankTransfer


@dataclass(frozen=True, slots=True)
class MerchantRecord:
    id: int
    user_id: int
    username: str
    status: str
    bank_account: str
    account_id: uuid.UUID | None  # None until approved
    credit_limit: Decimal | None  # None without a credit line


@dataclass(frozen=True, slots=True)
class WithdrawalRecord:
    id: uuid.UUID
    merchant_id: int
    amount: Decimal
    status: str
    idempotency_key: str
    reserve_tx_id: uuid.UUID
    final_tx_id: uuid.UUID | None


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def create_user(
    session: AsyncSession,
    *,
    username: str | None = None,
    password_hash: str = "x",  # noqa: S107 - not a hash of anything; nobody logs in with it
    is_admin: bool = False,
) -> User:
    """A user row; the password hash is a placeholder unless one is given."""
    user = User(username=username or unique("user"), password_hash=password_hash, is_admin=is_admin)
    session.add(user)
    await session.flush()
    return user


async def create_merchant(
    session: AsyncSession,
    *,
    status: str = MerchantStatus.APPROVED,
    credit_limit: Decimal = Decimal("100.00"),
    bank_account: str = "DE0000000001",
    username: str | None = None,
) -> MerchantRecord:
    """A merchant and its user; APPROVED or SUSPENDED ones also get a wallet and a credit line."""
    user = await create_user(session, username=username or unique("merchant"))
    approved = status != MerchantStatus.PENDING_APPROVAL
    merchant_id = await session.scalar(
        insert(Merchant)
        .values(
            user_id=user.id,
            status=status,
            bank_account=bank_account,
            requested_credit=credit_limit if credit_limit > 0 else Decimal("100.00"),
            approved_at=func.now() if approved else None,
        )
        .returning(Merchant.id)
    )
    assert merchant_id is not None
    account_id = None
    if approved:
        account_id = await session.scalar(
            insert(WalletAccount)
            .values(id=uuid.uuid4(), merchant_id=merchant_id)
            .returning(WalletAccount.id)
        )
        await session.execute(
            insert(MerchantCredit).values(merchant_id=merchant_id, credit_limit=credit_limit)
        )
    return MerchantRecord(
        id=merchant_id,
        user_id=user.id,
        username=user.username,
        status=status,
        bank_account=bank_account,
        account_id=account_id,
        credit_limit=credit_limit if approved else None,
    )


async def fund_pool(session: AsyncSession, amount: Decimal | str) -> TopUpResult:
    """Top up the pool through the ledger service (FUNDING -> POOL)."""
    return await ledger.top_up_pool(session, amount=Decimal(amount))


async def create_withdrawal(
    session: AsyncSession,
    *,
    merchant: MerchantRecord,
    amount: Decimal | str = Decimal("10.00"),
    status: str = WithdrawalStatus.SUCCESS,
    idempotency_key: str | None = None,
) -> WithdrawalRecord:
    """A withdrawal with everything a consistent one implies, as if it went through the API.

    Reserve (POOL -> IN_FLIGHT, utilized and pool moved), then for SUCCESS a settle
    (IN_FLIGHT -> PAID_OUT) and a PAID payout and bank transfer, for FAILED a release
    (IN_FLIGHT -> POOL, utilized and pool restored) and a REFUSED payout and bank transfer.
    The pool must hold the amount.
    """
    assert merchant.account_id is not None, "only an approved merchant can withdraw"
    amount = Decimal(amount)
    withdrawal_id, reserve_tx_id = uuid.uuid4(), uuid.uuid4()
    final = status in (WithdrawalStatus.SUCCESS, WithdrawalStatus.FAILED)
    final_tx_id = uuid.uuid4() if final else None
    key = idempotency_key or unique("key")
    bank_reference = unique("bank") if status == WithdrawalStatus.SUCCESS else None
    await session.execute(
        insert(Withdrawal).values(
            id=withdrawal_id,
            merchant_id=merchant.id,
            account_id=merchant.account_id,
            amount=amount,
            status=status,
            idempotency_key=key,
            bank_account=merchant.bank_account,
            bank_reference=bank_reference,
            failure_code="REFUSED" if status == WithdrawalStatus.FAILED else None,
            reserve_tx_id=reserve_tx_id,
            final_tx_id=final_tx_id,
        )
    )
    await _transfer(session, reserve_tx_id, LedgerKind.RESERVE, amount, withdrawal_id)
    await _add_utilized(session, merchant_id=merchant.id, amount=amount)
    await ledger_repository.add_to_pool(session, amount=-amount)
    if status == WithdrawalStatus.SUCCESS:
        assert final_tx_id is not None
        await _transfer(session, final_tx_id, LedgerKind.SETTLE, amount, withdrawal_id)
        await _payout(session, merchant, withdrawal_id, amount, PayoutStatus.PAID, bank_reference)
    elif status == WithdrawalStatus.FAILED:
        assert final_tx_id is not None
        await _transfer(session, final_tx_id, LedgerKind.RELEASE, amount, withdrawal_id)
        await _add_utilized(session, merchant_id=merchant.id, amount=-amount)
        await ledger_repository.add_to_pool(session, amount=amount)
        await _payout(session, merchant, withdrawal_id, amount, PayoutStatus.REFUSED, None)
    return WithdrawalRecord(
        id=withdrawal_id,
        merchant_id=merchant.id,
        amount=amount,
        status=status,
        idempotency_key=key,
        reserve_tx_id=reserve_tx_id,
        final_tx_id=final_tx_id,
    )


async def _transfer(
    session: AsyncSession,
    tx_id: uuid.UUID,
    kind: LedgerKind,
    amount: Decimal,
    withdrawal_id: uuid.UUID,
) -> None:
    await ledger.record_withdrawal_move(
        session, kind=kind, tx_id=tx_id, amount=amount, withdrawal_id=withdrawal_id
    )


async def _add_utilized(session: AsyncSession, *, merchant_id: int, amount: Decimal) -> None:
    await session.execute(
        update(MerchantCredit)
        .where(MerchantCredit.merchant_id == merchant_id)
        .values(utilized_amount=MerchantCredit.utilized_amount + amount)
    )


async def _payout(
    session: AsyncSession,
    merchant: MerchantRecord,
    withdrawal_id: uuid.UUID,
    amount: Decimal,
    status: PayoutStatus,
    bank_reference: str | None,
) -> None:
    await session.execute(
        insert(SettlementPayout).values(
            withdrawal_id=withdrawal_id,
            merchant_id=merchant.id,
            account_id=merchant.account_id,
            amount=amount,
            bank_account=merchant.bank_account,
            status=status,
            bank_reference=bank_reference,
            failure_code="REFUSED" if status == PayoutStatus.REFUSED else None,
        )
    )
    # The bank's own book: the transfer settlement asked it for (the money that left).
    await session.execute(
        insert(SettlementBankTransfer).values(
            reference=withdrawal_id,
            amount=amount,
            account=merchant.bank_account,
            status=status,
            bank_reference=bank_reference,
            failure_code="REFUSED" if status == PayoutStatus.REFUSED else None,
        )
    )


@dataclass(frozen=True, slots=True)
class SeededBook:
    merchant: MerchantRecord  # one withdrawal in each status
    idle_merchant: MerchantRecord  # a credit line and no withdrawals
    withdrawals: dict[str, WithdrawalRecord]  # by status


async def seed_consistent_book(session: AsyncSession) -> SeededBook:
    """A pool funded with 1000.00, a merchant with one withdrawal in each status (QUEUED 10,
    PROCESSING 20, SUCCESS 30, FAILED 40), an idle approved merchant and a pending one."""
    await fund_pool(session, "1000.00")
    merchant = await create_merchant(session, credit_limit=Decimal("500.00"))
    idle = await create_merchant(session, credit_limit=Decimal("50.00"))
    await create_merchant(session, status=MerchantStatus.PENDING_APPROVAL)
    withdrawals = {}
    for status, amount in [
        (WithdrawalStatus.QUEUED, "10.00"),
        (WithdrawalStatus.PROCESSING, "20.00"),
        (WithdrawalStatus.SUCCESS, "30.00"),
        (WithdrawalStatus.FAILED, "40.00"),
    ]:
        withdrawals[str(status)] = await create_withdrawal(
            session, merchant=merchant, amount=amount, status=status
        )
    return SeededBook(merchant=merchant, idle_merchant=idle, withdrawals=withdrawals)
