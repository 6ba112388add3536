"""Seed load-test merchants m1..mN in bulk: one password hash, set-based SQL in chunks."""

import sys
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.passwords import hash_password
from app.ledger import repository as ledger_repository
from app.ledger import service as ledger
from app.models import Base

CHUNK = 10_000
POOL_FACTOR = 5

_SERIES = "generate_series(CAST(:lo AS integer), CAST(:hi AS integer)) g"
# Each statement creates what is missing for merchants lo..hi, so a re-run only adds.
_CREATE = [
    """INSERT INTO users (username, password_hash, is_admin)
       SELECT 'm' || g, :password_hash, false FROM {series}
       ON CONFLICT (username) DO NOTHING""",
    """INSERT INTO merchants (user_id, status, bank_account, requested_credit, approved_at)
       SELECT u.id, 'APPROVED', 'DE' || lpad(g::text, 20, '0'), CAST(:credit AS numeric), now()
       FROM {series} JOIN users u ON u.username = 'm' || g
       WHERE NOT EXISTS (SELECT 1 FROM merchants m WHERE m.user_id = u.id)""",
    """INSERT INTO wallet_accounts (id, merchant_id)
       SELECT gen_random_uuid(), m.id
       FROM {series} JOIN users u ON u.username = 'm' || g
       JOIN merchants m ON m.user_id = u.id
       WHERE NOT EXISTS (SELECT 1 FROM wallet_accounts w WHERE w.merchant_id = m.id)""",
    """INSERT INTO merchant_credits (merchant_id, credit_limit)
       SELECT m.id, CAST(:credit AS numeric)
       FROM {series} JOIN users u ON u.username = 'm' || g
       JOIN merchants m ON m.user_id = u.id
       ON CONFLICT (merchant_id) DO NOTHING""",
]
_CREATE = [statement.format(series=_SERIES) for statement in _CREATE]

_SEEDED_TABLES = ["users", "merchants", "wallet_accounts", "merchant_credits"]

# Everything but admins and the pool row; TRUNCATE also bypasses the ledger's append-only
# trigger, which is right here: a reset starts a new book, it does not edit the old one.
_MONEY_TABLES = [
    t.name for t in Base.metadata.sorted_tables if t.name not in {"users", "credit_pool"}
]


@dataclass(frozen=True)
class SeedResult:
    merchants: int
    credit: Decimal
    pool_available: Decimal


def _progress(done: int, total: int) -> None:
    width = 30
    filled = width * done // total
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} merchants")
    sys.stderr.flush()


async def reset(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Forget every merchant and money record; admins stay, the pool starts at zero.

    Run as the owner, a superuser (dev/test only): the ledger's TRUNCATE guard (migration
    0009) refuses everyone, and session_replication_role = replica fires no such trigger.
    """
    async with sessionmaker() as session, session.begin():
        await _reset(session)


async def _reset(session: AsyncSession) -> None:
    await session.execute(text("SET LOCAL session_replication_role = replica"))
    await session.execute(text(f"TRUNCATE {', '.join(_MONEY_TABLES)} RESTART IDENTITY CASCADE"))
    await session.execute(text("DELETE FROM users WHERE NOT is_admin"))
    await session.execute(text("UPDATE credit_pool SET available = 0 WHERE id = 1"))


async def seed(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    merchants: int,
    credit: Decimal,
    password: str,
    progress: bool = True,
) -> SeedResult:
    """Approved merchants m1..mN with `credit` each; the pool funded to 5x their total."""
    password_hash = hash_password(password)  # once: argon2 is slow on purpose
    for lo in range(1, merchants + 1, CHUNK):
        hi = min(lo + CHUNK - 1, merchants)
        params = {"lo": lo, "hi": hi, "credit": credit, "password_hash": password_hash}
        async with sessionmaker() as session, session.begin():
            # Bulk work, not a request: the API's statement timeout does not apply.
            await session.execute(text("SET LOCAL statement_timeout = 0"))
            for statement in _CREATE:
                await session.execute(text(statement), params)
        async with sessionmaker() as session, session.begin():
            # Fresh statistics, or the planner keeps planning for the empty tables it saw.
            await session.execute(text(f"ANALYZE {', '.join(_SEEDED_TABLES)}"))
        if progress:
            _progress(hi, merchants)
    if progress:
        sys.stderr.write("\n")
    async with sessionmaker() as session, session.begin():
        target = credit * merchants * POOL_FACTOR
        available = await ledger_repository.pool_available(session)
        if available < target:
            available = (
                await ledger.top_up_pool(session, amount=target - available)
            ).pool_available
    return SeedResult(merchants=merchants, credit=credit, pool_available=available)
