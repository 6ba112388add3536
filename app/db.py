"""Database plumbing: one SQLAlchemy engine per process, sessions (one per request; the
transaction owner commits) and money connections for the batched money path."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import bindparam, column, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.config import Settings
from app.errors import DATABASE_ERRORS, DatabaseBusy, is_transient_database_error, money_statement


def create_engine(settings: Settings, *, pool_size: int | None = None) -> AsyncEngine:
    return create_async_engine(
        settings.database_url,
        pool_size=pool_size or settings.DB_POOL_SIZE,
        max_overflow=0,
        pool_pre_ping=False,
        connect_args=connect_args(settings),
    )


def connect_args(settings: Settings) -> dict[str, Any]:
    """asyncpg's options, for PostgreSQL itself or for PgBouncer in transaction mode.

    The server-side timeouts are the runtime roles' own settings (app/database_roles.py,
    migration 0009): they hold for every session of the role, through any pooler. The
    DB_*_TIMEOUT_MS settings, when set, override them on direct connections only.
    """
    if not settings.behind_pgbouncer:
        overrides = {
            "statement_timeout": settings.DB_STATEMENT_TIMEOUT_MS,
            "lock_timeout": settings.DB_LOCK_TIMEOUT_MS,
            "idle_in_transaction_session_timeout": settings.DB_IDLE_IN_TRANSACTION_TIMEOUT_MS,
        }
        return {
            "command_timeout": settings.DB_COMMAND_TIMEOUT_S,
            "server_settings": {"application_name": "creditpool"}
            | {name: str(value) for name, value in overrides.items() if value is not None},
        }
    # Transaction pooling hands each transaction to any server connection, so nothing may
    # outlive one: asyncpg's cached named prepared statements would be missing (or collide)
    # there. With its cache off it uses the unnamed statement, re-parsed at every execution
    # (PgBouncer < 1.21 cannot track named ones). PgBouncer also refuses startup parameters it
    # does not know: the timeouts are the roles' there.
    return {
        "statement_cache_size": 0,
        "command_timeout": settings.DB_COMMAND_TIMEOUT_S,
        "server_settings": {"application_name": "creditpool"},
    }


@asynccontextmanager
async def money_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for a money transaction, checked out before anything is sent: a database
    that is down or busy here is DatabaseBusy (nothing was sent, so nothing changed)."""
    conn = engine.connect()
    try:
        await conn.start()
    except (*DATABASE_ERRORS, OSError) as exc:
        if is_transient_database_error(exc):
            raise DatabaseBusy() from exc
        raise
    try:
        yield conn
    finally:
        await conn.close()


# Shutdown's last step may take this long (tests/unit/test_deploy_shutdown_budget.py adds the
# steps up against the orchestrators' grace periods); connections still open then go with
# the process, and PostgreSQL rolls back whatever they held.
POOL_CLOSE_TIMEOUT_S = 3.0


async def close_pools(engine: AsyncEngine) -> None:
    """Close the process's database pool within POOL_CLOSE_TIMEOUT_S."""
    with suppress(TimeoutError):
        async with asyncio.timeout(POOL_CLOSE_TIMEOUT_S):
            await engine.dispose()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for one request; services never commit, the route or service boundary does."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


@asynccontextmanager
async def money_transaction(session: AsyncSession) -> AsyncIterator[None]:
    """session.begin() for work that moves money, with honest answers when COMMIT is lost.

    An error before COMMIT rolls everything back (PostgreSQL aborts an open transaction whose
    connection drops, too); a link lost during COMMIT is OutcomeUnknown: it may have committed.
    """
    transaction = await session.begin()
    try:
        yield
    except BaseException:
        await transaction.rollback()
        raise
    async with money_statement():
        await transaction.commit()


def unnest(*columns: tuple[str, str, Any]) -> Any:
    """A derived table `d` of parallel arrays, one bound parameter each: (parameter, column,
    type). Its statement has one shape whatever the batch's size, so it is compiled once."""
    arrays = [bindparam(parameter, type_=ARRAY(kind)) for parameter, _, kind in columns]
    names = [column(name, kind) for _, name, kind in columns]
    return func.unnest(*arrays).table_valued(*names).render_derived(name="d")
