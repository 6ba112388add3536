"""Small factories for integration tests: rows written straight to the database, and
withdrawals made by the production money path.

They run in the caller's session and never commit: wrap them in `async with session.begin()`
(or commit yourself) like any other service call. Every argument after the session is
keyword-only, and every default is unique where the schema requires it.
"""

import uuid
from dataclasses import dataclass, replace
from decimal import Decimal

from sqlalchemy import func, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, create_async_engine

from app.database_roles import SETTLEMENT_ROLE
from app.idempotency.service import fingerprint
from app.ledger import service as ledger
from app.ledger.schemas import TopUpResult
from app.models import (
    Merchant,
    MerchantCredit,
    MerchantStatus,
    PayoutStatus,
    SettlementPayout,
    User,
    WalletAccount,
    WithdrawalStatus,
)
from app.models.settlement import SettlementBankTransfer
from app.money import format_amount
from app.withdrawals.answers import answer_for
from app.withdrawals.decide import ReserveRequest
from app.withdrawals.finish import Finish, FinishRequest, finish_in
from app.withdrawals.repository import WithdrawalRow
from app.withdrawals.reserve import reserve_in


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
    """A withdrawal made by the production money path, in the session's transaction.

    Reserved by transaction 1 (app/withdrawals/reserve.py: key, line, ledger, pool), then for
    SUCCESS settled and for FAILED released by transaction 2 (finish.py), with the PAID or
    REFUSED payout and bank transfer settlement would have recorded. The pool must hold the
    amount.
    """
    assert merchant.account_id is not None, "only an approved merchant can withdraw"
    amount = Decimal(amount)
    key = idempotency_key or unique("key")
    conn = await session.connection()
    open_status = WithdrawalStatus.QUEUED if status == WithdrawalStatus.QUEUED else "PROCESSING"
    [reserved] = await reserve_in(
        conn,
        [
            ReserveRequest(
                merchant_id=merchant.id,
                key=key,
                request_hash=fingerprint({"amount": format_amount(amount)}),
                amount=amount,
                status=WithdrawalStatus(open_status),
                withdrawal_id=uuid.uuid4(),
                reserve_tx_id=uuid.uuid4(),
            )
        ],
    )
    assert isinstance(reserved, WithdrawalRow), f"not reserved: {reserved!r}"
    withdrawal = reserved
    if status in (WithdrawalStatus.SUCCESS, WithdrawalStatus.FAILED):
        paid = status == WithdrawalStatus.SUCCESS
        final = replace(
            withdrawal,
            status=status,
            final_tx_id=uuid.uuid4(),
            bank_reference=unique("bank") if paid else None,
            failure_code=None if paid else "REFUSED",
        )
        answer = answer_for(final)
        [done] = await finish_in(
            conn,
            [
                FinishRequest(
                    withdrawal_id=final.id,
                    status=WithdrawalStatus(status),
                    final_tx_id=final.final_tx_id,
                    response_status=answer.status,
                    response_body=answer.body,
                    bank_reference=final.bank_reference,
                    failure_code=final.failure_code,
                )
            ],
        )
        assert isinstance(done, Finish) and done.finished, done
        withdrawal = done.withdrawal
        payout = PayoutStatus.PAID if paid else PayoutStatus.REFUSED
        await _payout(session, merchant, withdrawal.id, amount, payout, withdrawal.bank_reference)
    return WithdrawalRecord(
        id=withdrawal.id,
        merchant_id=merchant.id,
        amount=amount,
        status=withdrawal.status,
        idempotency_key=key,
        reserve_tx_id=withdrawal.reserve_tx_id,
        final_tx_id=withdrawal.final_tx_id,
    )


async def _payout(
    session: AsyncSession,
    merchant: MerchantRecord,
    withdrawal_id: uuid.UUID,
    amount: Decimal,
    status: PayoutStatus,
    bank_reference: str | None,
) -> None:
    """Settlement's records of the payout, written as settlement writes them: by its own role
    (the core's may not), committed at once (settlement commits before the core finishes)."""
    url = (await session.connection()).engine.url
    engine = create_async_engine(url.set(username=SETTLEMENT_ROLE, password=None))
    try:
        async with engine.begin() as conn:
            await _write_payout(conn, merchant, withdrawal_id, amount, status, bank_reference)
    finally:
        await engine.dispose()


async def _write_payout(
    conn: AsyncConnection,
    merchant: MerchantRecord,
    withdrawal_id: uuid.UUID,
    amount: Decimal,
    status: PayoutStatus,
    bank_reference: str | None,
) -> None:
    await conn.execute(
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
    await conn.execute(
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
