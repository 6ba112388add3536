import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app import migrations
from app.config import to_asyncpg_url
from app.models import Base
from app.requestlog.partitions import include_name
from tests.support.stack import ServerStack


@pytest.fixture(scope="module")
def scratch_url(stack: ServerStack) -> str:
    """A database of its own, so migrating up and down never disturbs the other tests."""
    stack.postgres.psql("DROP DATABASE IF EXISTS migration_check")
    stack.postgres.psql("CREATE DATABASE migration_check")
    # As the owner (the superuser), with the runtime roles already made by the main database:
    # migration 0009 then only grants.
    return stack.owner_url.rsplit("/", 1)[0] + "/migration_check"


async def _inspect(url: str, func):
    engine = create_async_engine(to_asyncpg_url(url))
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(func)
    finally:
        await engine.dispose()


def _schema_diff(conn: Connection) -> list[object]:
    context = MigrationContext.configure(conn, opts={"include_name": include_name})
    return compare_metadata(context, Base.metadata)


def _table_names(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


async def _alembic(func, url: str) -> None:
    # Alembic's env.py runs its own event loop, so it runs in a thread here.
    await asyncio.get_running_loop().run_in_executor(None, func, url)


async def test_migrations_create_exactly_the_models(scratch_url: str) -> None:
    await _alembic(migrations.upgrade, scratch_url)
    assert await _inspect(scratch_url, _schema_diff) == []


async def test_downgrade_to_base_then_upgrade_again(scratch_url: str) -> None:
    await _alembic(migrations.upgrade, scratch_url)
    await _alembic(migrations.downgrade, scratch_url)
    assert await _inspect(scratch_url, _table_names) <= {"alembic_version"}
    await _alembic(migrations.upgrade, scratch_url)
    assert set(Base.metadata.tables) <= await _inspect(scratch_url, _table_names)


async def test_ledger_refuses_updates_and_deletes(scratch_url: str) -> None:
    from sqlalchemy import text

    await _alembic(migrations.upgrade, scratch_url)
    engine = create_async_engine(to_asyncpg_url(scratch_url))
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO ledger_entries (tx_id, kind, account, amount) VALUES "
                    "(gen_random_uuid(), 'TOPUP', 'POOL', 1.00)"
                )
            )
        for statement in ("UPDATE ledger_entries SET amount = 2", "DELETE FROM ledger_entries"):
            with pytest.raises(Exception, match="append-only"):
                async with engine.begin() as conn:
                    await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def test_the_pool_starts_with_one_empty_row(scratch_url: str) -> None:
    from sqlalchemy import text

    await _alembic(migrations.upgrade, scratch_url)
    engine = create_async_engine(to_asyncpg_url(scratch_url))
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT id, available FROM credit_pool"))).all()
        assert [(r.id, str(r.available)) for r in rows] == [(1, "0.00")]
    finally:
        await engine.dispose()
