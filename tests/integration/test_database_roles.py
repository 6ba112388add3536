"""The runtime roles (migration 0009) can do what their process needs and nothing that rewrites
history: each forbidden statement is tried as the role itself, on a connection of its own
with no connect-time settings."""

import asyncio
import base64
import hashlib
import hmac
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app import migrations
from app.database_roles import API_ROLE, RUNTIME_ROLES, SETTLEMENT_ROLE
from app.dev.embedded import EmbeddedPostgres
from app.dev.embedded.process import free_port
from app.requestlog import partitions
from tests.support.stack import ServerStack

REWRITE_HISTORY = (
    "UPDATE ledger_entries SET amount = amount",
    "DELETE FROM ledger_entries",
    "TRUNCATE ledger_entries",
    "ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_append_only",
    "ALTER TABLE ledger_entries DISABLE TRIGGER ALL",
    "DROP TRIGGER ledger_entries_no_truncate ON ledger_entries",
    "CREATE TABLE owned_by_me (id int)",
)
CORE_WRITES = (
    "INSERT INTO withdrawals DEFAULT VALUES",
    "INSERT INTO ledger_entries DEFAULT VALUES",
    "INSERT INTO credit_pool DEFAULT VALUES",
    "UPDATE credit_pool SET available = available + 1",
    "UPDATE merchant_credits SET utilized_amount = 0",
)
CORE_READS = ("SELECT * FROM merchants", "SELECT * FROM users", "SELECT * FROM withdrawals")
SETTLEMENT_WRITES = (
    "INSERT INTO settlement_payouts DEFAULT VALUES",
    "UPDATE settlement_payouts SET status = status",
    "DELETE FROM settlement_payouts",
    "INSERT INTO settlement_bank_transfers DEFAULT VALUES",
    "UPDATE settlement_bank_transfers SET status = status",
    "DELETE FROM settlement_bank_transfers",
)


def scram_matches(verifier: str, password: str) -> bool:
    """Whether PostgreSQL's SCRAM-SHA-256 verifier (RFC 5802 StoredKey) is of `password`."""
    iterations_salt, keys = verifier.removeprefix("SCRAM-SHA-256$").split("$")
    iterations, salt = iterations_salt.split(":")
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(salt), int(iterations)
    )
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    return base64.b64encode(hashlib.sha256(client_key).digest()).decode() == keys.split(":")[0]


@asynccontextmanager
async def connected(stack: ServerStack, role: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(stack.postgres.url_for(role))
    try:
        yield conn
    finally:
        await conn.close()


async def refused(conn: asyncpg.Connection, statement: str) -> bool:
    """Whether PostgreSQL refuses `statement` for want of privilege (nothing is kept)."""
    try:
        async with conn.transaction():
            await conn.execute(statement)
    except asyncpg.InsufficientPrivilegeError:
        return True
    return False


@pytest.mark.parametrize("role", RUNTIME_ROLES)
async def test_no_runtime_role_can_rewrite_the_ledger_or_its_guards(
    stack: ServerStack, role: str
) -> None:
    async with connected(stack, role) as conn:
        allowed = [s for s in REWRITE_HISTORY if not await refused(conn, s)]
    assert allowed == []


async def test_truncating_the_ledger_is_refused_to_the_owner_too(stack: ServerStack) -> None:
    async with connected(stack, "postgres") as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="TRUNCATE refused"):
            async with conn.transaction():
                await conn.execute("TRUNCATE ledger_entries CASCADE")


async def test_no_runtime_role_owns_a_table_or_a_function(stack: ServerStack) -> None:
    async with connected(stack, "postgres") as conn:
        owned = await conn.fetch(
            "SELECT c.relname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner"
            " WHERE r.rolname = ANY($1::text[])"
            " UNION ALL SELECT p.proname FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner"
            " WHERE r.rolname = ANY($1::text[])",
            list(RUNTIME_ROLES),
        )
    assert owned == []


async def test_settlement_cannot_touch_the_core_tables(stack: ServerStack) -> None:
    async with connected(stack, SETTLEMENT_ROLE) as conn:
        allowed = [s for s in (*CORE_WRITES, *CORE_READS) if not await refused(conn, s)]
        # Its own tables and its request-log rows it may write.
        assert await conn.fetchval("SELECT count(*) FROM settlement_payouts") == 0
    assert allowed == []


async def test_the_api_role_only_reads_settlements_tables(stack: ServerStack) -> None:
    async with connected(stack, API_ROLE) as conn:
        allowed = [s for s in SETTLEMENT_WRITES if not await refused(conn, s)]
        # The audit reads them.
        assert await conn.fetchval("SELECT count(*) FROM settlement_bank_transfers") == 0
    assert allowed == []


async def test_the_partition_job_works_as_the_api_role_which_cannot_do_it_itself(
    stack: ServerStack, engine: AsyncEngine
) -> None:
    """Dropping as the api role: tests/integration/test_request_log_partitions.py."""
    day = datetime.now(UTC).date() + timedelta(days=400)
    names = [partitions.partition_name(day), partitions.partition_name(day + timedelta(days=1))]
    async with connected(stack, API_ROLE) as conn:
        assert await refused(
            conn,
            f"CREATE TABLE {names[0]} PARTITION OF api_request_log"
            f" FOR VALUES FROM ('{day}') TO ('{day + timedelta(days=1)}')",
        )
    assert engine.url.username == API_ROLE
    try:
        async with engine.begin() as conn:  # a retention that drops nothing
            made = await partitions.maintain(conn, today=day, retention_days=100_000)
        assert (made.created, made.dropped) == (names, [])
    finally:
        async with connected(stack, "postgres") as conn:
            for name in names:
                await conn.execute(f"DROP TABLE IF EXISTS {name}")


@pytest.mark.parametrize("role", RUNTIME_ROLES)
async def test_a_fresh_connection_of_each_runtime_role_has_the_timeouts(
    stack: ServerStack, role: str
) -> None:
    async with connected(stack, role) as conn:
        shown = {
            name: await conn.fetchval(f"SHOW {name}")
            for name in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")
        }
    assert shown == {
        "statement_timeout": "5s",
        "lock_timeout": "3s",
        "idle_in_transaction_session_timeout": "30s",
    }


async def test_migrate_gives_the_runtime_roles_login_with_their_passwords(
    stack: ServerStack,
) -> None:
    """As the deploy runs it: the owner's URL and the roles' passwords, nothing spliced."""
    password = 'it\'s a "quoted" $$ password'
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {
        "ENVIRONMENT": "test",
        "MIGRATION_DATABASE_URL": stack.owner_url,
        "SETTLEMENT_DB_PASSWORD": password,
    }
    try:
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "app", "migrate"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        async with connected(stack, "postgres") as conn:
            rows = await conn.fetch(
                "SELECT rolname, rolcanlogin, rolpassword FROM pg_authid"
                " WHERE rolname = ANY($1::text[]) ORDER BY rolname",
                list(RUNTIME_ROLES),
            )
            stored = {row["rolname"]: row for row in rows}
            assert stored[SETTLEMENT_ROLE]["rolcanlogin"]
            assert stored[SETTLEMENT_ROLE]["rolpassword"].startswith("SCRAM-SHA-256$")
            # The role whose password migrate was not given is left as it was.
            assert stored[API_ROLE]["rolpassword"] is None
            # The verifier is of exactly this password, quotes and dollars intact.
            assert scram_matches(stored[SETTLEMENT_ROLE]["rolpassword"], password)
    finally:
        async with connected(stack, "postgres") as conn:
            await conn.execute(f"ALTER ROLE {SETTLEMENT_ROLE} PASSWORD NULL")


def test_an_owner_that_is_not_a_superuser_migrates_a_fresh_cluster(tmp_path: Path) -> None:
    """A managed database's owner: CREATEROLE, no superuser. Migration 0009 creates the
    runtime roles NOLOGIN (so it administers them) and sets their timeouts."""
    server = EmbeddedPostgres(tmp_path / "postgres", port=free_port(), durable=False)
    server.start()
    try:
        server.psql("CREATE ROLE creditpool_owner LOGIN CREATEROLE")
        server.psql("CREATE DATABASE owned OWNER creditpool_owner")
        owner_url = f"postgresql://creditpool_owner@127.0.0.1:{server.port}/owned"
        migrations.upgrade(owner_url)
        migrations.upgrade(owner_url)  # idempotent
        roles = server.psql(
            "SELECT string_agg(rolname || ':' || rolcanlogin || ':' || array_to_string("
            "rolconfig, ','), ' ' ORDER BY rolname) FROM pg_roles"
            " WHERE rolname LIKE 'creditpool\\_%' AND rolname <> 'creditpool_owner'",
            database="owned",
        )
        timeouts = "statement_timeout=5s,lock_timeout=3s,idle_in_transaction_session_timeout=30s"
        assert roles == " ".join(f"{role}:false:{timeouts}" for role in RUNTIME_ROLES)
        owners = server.psql(
            "SELECT string_agg(DISTINCT tableowner, ',') FROM pg_tables"
            " WHERE schemaname = 'public'",
            database="owned",
        )
        assert owners == "creditpool_owner"
    finally:
        server.stop()
