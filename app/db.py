"""Engine and session plumbing: one session per request; the transaction owner commits."""

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.config import Settings

# What a one-statement repository function runs on: a session's transaction, or a connection
# from `autocommit(engine)` where the statement is its own transaction.
Executor = AsyncSession | AsyncConnection


def create_engine(settings: Settings, *, pool_size: int | None = None) -> AsyncEngine:
    return create_async_engine(
        settings.database_url,
        pool_size=pool_size or settings.DB_POOL_SIZE,
        max_overflow=0,
        pool_pre_ping=False,
        connect_args=connect_args(settings),
    )


def connect_args(settings: Settings) -> dict[str, Any]:
    """asyncpg's options, for PostgreSQL itself or for PgBouncer in transaction mode."""
    if not settings.behind_pgbouncer:
        return {
            "server_settings": {
                "statement_timeout": str(settings.DB_STATEMENT_TIMEOUT_MS),
                "application_name": "creditpool",
            },
        }
    # Transaction pooling hands each transaction to any server connection, so nothing may
    # outlive one: asyncpg's cached named prepared statements would be missing (or collide)
    # there. With its cache off it uses the unnamed statement, re-parsed at every execution
    # (PgBouncer < 1.21 cannot track named ones). PgBouncer also refuses startup parameters it
    # does not know, so the statement timeout comes from its connect_query instead.
    return {"statement_cache_size": 0, "server_settings": {"application_name": "creditpool"}}


def autocommit(engine: AsyncEngine) -> AsyncEngine:
    """The same pool, with every statement its own transaction: no BEGIN or COMMIT round trip.

    Only for work that is one statement (a single function call, one INSERT ... RETURNING):
    the hot paths, where each extra round trip costs CPU in both processes and, on the money
    path, keeps a row locked while this process gets around to sending COMMIT.
    """
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for one request; services never commit, the route or service boundary does."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
