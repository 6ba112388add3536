"""The money path through Debian's PgBouncer in transaction mode, configured from the shipped
deploy/pgbouncer/pgbouncer.ini; the apps see nothing but DB_HOST and DB_PORT=6432."""

import asyncio
import os
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import PGBOUNCER_PORT, Settings
from app.database_roles import API_ROLE, SETTLEMENT_ROLE
from app.db import create_engine, create_sessionmaker
from app.main import create_app
from app.models import ApiRequestLog
from app.settlement.main import create_app as create_settlement_app
from tests.support.api import admin_token, approved_merchant
from tests.support.money import assert_books_balance, bank_transfers, top_up, withdraw
from tests.support.pgbouncer import PgBouncer, running_pgbouncer
from tests.support.servers import serve
from tests.support.stack import ServerStack, settlement_settings

ROOT = Path(__file__).resolve().parents[2]
# Fewer server connections than either app's pool: transactions of many clients share them.
SERVER_CONNECTIONS = 2


@pytest.fixture(scope="module")
def bouncer(stack: ServerStack) -> Iterator[PgBouncer]:
    with running_pgbouncer(stack.postgres, pool_size=SERVER_CONNECTIONS) as bouncer:
        yield bouncer


@pytest.fixture
def bouncer_settings(settings: Settings, bouncer: PgBouncer) -> Settings:
    """What an operator changes: the host, DB_PORT=6432 and DB_PGBOUNCER=true."""
    assert bouncer.port == PGBOUNCER_PORT
    changed = settings.model_copy(
        update={
            "DATABASE_URL": None,
            "POSTGRES_USER": API_ROLE,
            "DB_HOST": bouncer.host,
            "DB_PORT": bouncer.port,
            "DB_PGBOUNCER": True,
        }
    )
    assert changed.behind_pgbouncer
    return changed


@pytest.fixture
async def bouncer_sessions(
    bouncer_settings: Settings,
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(bouncer_settings, pool_size=5)
    yield create_sessionmaker(engine)
    await engine.dispose()


@asynccontextmanager
async def apps_through(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The core API and settlement (over real HTTP), both reaching PostgreSQL via PgBouncer;
    on exit both have shut down and flushed their request logs through it."""
    async with serve(create_settlement_app(settlement_settings(settings))) as settlement:
        settings = settings.model_copy(
            update={"SETTLEMENT_URL": f"{settlement}/api/settlement/withdraw"}
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
                yield client


async def test_concurrent_withdrawals_through_pgbouncer_balance_the_books(
    bouncer_settings: Settings,
    bouncer: PgBouncer,
    bouncer_sessions: async_sessionmaker[AsyncSession],
    clean_db: None,
    redis: Redis,
) -> None:
    async with apps_through(bouncer_settings) as api:
        admin = await admin_token(api, bouncer_sessions)
        await top_up(api, admin, "50.00")
        tokens = [(await approved_merchant(api, admin, credit_limit="30.00"))[1] for _ in range(3)]
        # 60 requests of 2.00 against lines of 30.00 each and a pool of 50.00: the pool runs
        # dry after exactly 25 payouts, whoever wins the races.
        responses = await asyncio.gather(
            *(withdraw(api, token, "2.00") for token in tokens for _ in range(20))
        )
        pools = {row["database"]: row for row in bouncer.show("POOLS")}
        servers = [row for row in bouncer.show("SERVERS") if row["database"] == "creditpool"]
        clients = [row for row in bouncer.show("CLIENTS") if row["database"] == "creditpool"]

    outcomes = Counter(
        "SUCCESS" if r.status_code == 200 else r.json().get("code") for r in responses
    )
    assert outcomes["SUCCESS"] == 25, outcomes
    assert set(outcomes) <= {"SUCCESS", "INSUFFICIENT_POOL", "INSUFFICIENT_MERCHANT_CREDIT"}
    assert await bank_transfers(bouncer_sessions) == {"PAID": 25}
    await assert_books_balance(bouncer_sessions)
    # Many clients' transactions took turns on a few server connections.
    assert pools["creditpool"]["pool_mode"] == "transaction"
    # PgBouncer keeps a pool per user: each runtime role's is at most SERVER_CONNECTIONS.
    per_role = Counter(row["user"] for row in servers)
    assert set(per_role) <= {API_ROLE, SETTLEMENT_ROLE}
    assert 0 < max(per_role.values()) <= SERVER_CONNECTIONS < len(clients)
    # The request log's COPY went through PgBouncer too: every withdrawal and every settle
    # batch call (which carries the request id of its first member) is there.
    # (Matched by request id: the session's shared settlement server may flush rows of
    # earlier tests in the background.)
    async with bouncer_sessions() as session:
        rows = (
            await session.execute(
                select(ApiRequestLog.service, ApiRequestLog.request_id).where(
                    ApiRequestLog.method == "POST", ApiRequestLog.path.like("%/withdraw%")
                )
            )
        ).all()
    api_ids = {request_id for service, request_id in rows if service == "api"}
    paid_ids = [request_id for service, request_id in rows if service == "settlement"]
    assert len(api_ids) == 60
    assert 1 <= len([request_id for request_id in paid_ids if request_id in api_ids]) <= 25


async def test_the_runtime_roles_timeouts_hold_through_pgbouncer(
    bouncer_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """PgBouncer sends no SET (no connect_query): the role's own settings (migration 0009)."""
    async with bouncer_sessions() as session:
        assert await session.scalar(text("SELECT current_user")) == API_ROLE
        assert await session.scalar(text("SHOW statement_timeout")) == "5s"
        assert await session.scalar(text("SHOW lock_timeout")) == "3s"
        assert await session.scalar(text("SHOW idle_in_transaction_session_timeout")) == "30s"
        # application_name_add_host: pg_stat_activity tells which replica holds a connection.
        name = await session.scalar(text("SHOW application_name"))
        assert name.startswith("creditpool - ")


def test_replicas_share_server_connections(bouncer_settings: Settings) -> None:
    """Separate processes (replicas) run one after another over the same server connections;
    asyncpg's numbered prepared statements would collide there."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DB_PGBOUNCER"}} | {
        "DB_HOST": str(bouncer_settings.DB_HOST),
        "DB_PORT": str(PGBOUNCER_PORT),
        "DB_PGBOUNCER": "true",
        "POSTGRES_USER": API_ROLE,
        "ENVIRONMENT": "test",
    }
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-m", "app", "audit"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr
