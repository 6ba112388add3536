import os

# Before any app import: the test suite runs in test mode, which allows the dev secrets.
os.environ["ENVIRONMENT"] = "test"
for name in (
    "DATABASE_URL",
    "MIGRATION_DATABASE_URL",
    "REDIS_URL",
    "DB_HOST",
    "SECRET_KEY",
    "INTERNAL_TOKEN",
):
    os.environ.pop(name, None)

from collections.abc import AsyncIterator, Iterator  # noqa: E402

import httpx  # noqa: E402
import pytest  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from redis.asyncio import Redis  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.ext.asyncio import (  # noqa: E402
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.config import Settings, get_settings, to_asyncpg_url  # noqa: E402
from app.db import create_engine, create_sessionmaker  # noqa: E402
from app.models import Base  # noqa: E402
from app.requestlog.buffer import flush as flush_request_log  # noqa: E402
from app.withdrawals.money_path import MoneyPath, create_money_path  # noqa: E402
from tests.support.servers import serve  # noqa: E402
from tests.support.stack import ServerStack, running_stack, settlement_settings  # noqa: E402


@pytest.fixture(scope="session")
def stack() -> Iterator[ServerStack]:
    with running_stack() as stack:
        # Every process of the suite runs as its runtime role (app/database_roles.py), as in
        # production; fixtures that need more say so (owner_engine).
        os.environ["DATABASE_URL"] = stack.database_url
        os.environ["MIGRATION_DATABASE_URL"] = stack.owner_url
        os.environ["REDIS_URL"] = stack.redis_url
        get_settings.cache_clear()
        stack.postgres.migrate()
        yield stack


@pytest.fixture(scope="session")
def base_settings(stack: ServerStack) -> Settings:
    return Settings(DATABASE_URL=stack.database_url, REDIS_URL=stack.redis_url)


@pytest.fixture(scope="session")
def shared_settlement_app(base_settings: Settings) -> FastAPI:
    from app.settlement.main import create_app

    return create_app(settlement_settings(base_settings))


@pytest.fixture(scope="session")
async def settlement_url(shared_settlement_app: FastAPI) -> AsyncIterator[str]:
    """The settlement app served over real HTTP by uvicorn for the whole session."""
    async with serve(shared_settlement_app) as base_url:
        yield f"{base_url}/api/settlement/withdraw"


@pytest.fixture(scope="session")
def settings(base_settings: Settings, settlement_url: str) -> Settings:
    return base_settings.model_copy(update={"SETTLEMENT_URL": settlement_url})


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings, pool_size=10)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def owner_engine(stack: ServerStack) -> AsyncIterator[AsyncEngine]:
    """The superuser, for what no runtime role may do: the clean-up between tests and the
    tests that corrupt the books with plain SQL to prove the audit catches it."""
    engine = create_async_engine(to_asyncpg_url(stack.owner_url), pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def settlement_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """Settlement's runtime role, for tests that write its tables as settlement itself does."""
    engine = create_engine(settlement_settings(settings), pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def owner_sessionmaker(owner_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(owner_engine)


@pytest.fixture
async def money(engine: AsyncEngine, settings: Settings) -> AsyncIterator[MoneyPath]:
    """A money path (its batchers) on the test engine, as the worker and reconciler use it."""
    path = create_money_path(engine, settings)
    yield path
    await path.aclose()


@pytest.fixture(scope="session")
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


async def empty_database(owner_engine: AsyncEngine, shared_settlement_app: FastAPI) -> None:
    """Empty every table and the pool, as the next test expects to find them (as the
    superuser: replica mode fires no ordinary trigger, so the ledger's TRUNCATE guard lets
    this one through)."""
    # The shared settlement server writes its request log in the background: write what it
    # holds now, so no row of this test lands in the next one.
    state = shared_settlement_app.state
    if hasattr(state, "engine"):
        await flush_request_log(state.request_log, state.engine)
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    async with owner_engine.begin() as conn:
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        await conn.execute(text("INSERT INTO credit_pool (id, available) VALUES (1, 0)"))


@pytest.fixture
async def clean_db(
    owner_engine: AsyncEngine, shared_settlement_app: FastAPI
) -> AsyncIterator[None]:
    """Every integration test starts from empty tables and an empty pool."""
    yield
    await empty_database(owner_engine, shared_settlement_app)


@pytest.fixture
def auth(settings: Settings) -> dict[str, str]:
    """The core's internal token, as settlement expects it."""
    return {"X-Internal-Token": settings.INTERNAL_TOKEN}


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis_url)
    # Empty at the start too: a test without this fixture (a stack of its own served on
    # 127.0.0.1, say) may have left per-address rate-limit counters behind.
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


async def _client_for(app: FastAPI, base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client


@pytest.fixture
async def api_app(settings: Settings, clean_db: None, redis: Redis) -> AsyncIterator[FastAPI]:
    """The core app with its real lifespan running (for tests that reach into app.state)."""
    from app.main import create_app

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def api(api_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The core API through a real ASGI transport, with its real lifespan."""
    transport = httpx.ASGITransport(app=api_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        yield client


@pytest.fixture
async def settlement_api(settings: Settings, clean_db: None) -> AsyncIterator[httpx.AsyncClient]:
    from app.settlement.main import create_app

    async for client in _client_for(
        create_app(settlement_settings(settings)), "http://settlement.test"
    ):
        yield client
