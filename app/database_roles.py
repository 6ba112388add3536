"""Least-privilege database roles (migration 0009; README "Database roles").

The owner (whoever runs the migrations: MIGRATION_DATABASE_URL) owns the schema and every
table. The processes connect as two runtime roles that own nothing, so neither can ALTER a
table or DISABLE its triggers:

- creditpool_api: the api, the worker and the CLI commands (reconcile, audit, ...);
- creditpool_settlement: the settlement app, its own settlement_* tables only.

GRANTS is the one statement of what each may do. `restate` makes the database match it and is
idempotent: migration 0009 calls it, and so must every later migration that creates a table
(add the table to GRANTS first). A table missing from GRANTS is reachable by the owner only.
"""

from sqlalchemy import make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

API_ROLE = "creditpool_api"
SETTLEMENT_ROLE = "creditpool_settlement"
RUNTIME_ROLES = (API_ROLE, SETTLEMENT_ROLE)

# Session defaults of both runtime roles (ALTER ROLE ... SET): every session of the role gets
# them, behind PgBouncer or any pooler too, with no connect-time SET. A lock wait ends (and
# the batch is retried, app/batching.py) before the statement timeout; a client that stalls
# inside a transaction loses it, and the row locks it held, after the last.
ROLE_TIMEOUTS = {
    "statement_timeout": "5s",
    "lock_timeout": "3s",
    "idle_in_transaction_session_timeout": "30s",
}

_CORE = "SELECT, INSERT, UPDATE"
GRANTS: dict[str, dict[str, str]] = {
    API_ROLE: {
        "users": _CORE,
        "refresh_families": _CORE,
        "merchants": _CORE,
        "wallet_accounts": _CORE,
        "merchant_credits": _CORE,
        "credit_pool": _CORE,
        "withdrawals": _CORE,
        "pool_topups": _CORE,
        # A claim given up in transaction 1, and the worker's retention purge.
        "idempotency_keys": _CORE + ", DELETE",
        # Append-only: history is never rewritten (ARCHITECTURE section 6).
        "ledger_entries": "SELECT, INSERT",
        # The request-log COPY, and the admin's GET /api/v1/admin/requests.
        "api_request_log": "SELECT, INSERT",
        # Read by the audit (money out of the bank) only.
        "settlement_payouts": "SELECT",
        "settlement_bank_transfers": "SELECT",
    },
    SETTLEMENT_ROLE: {
        "settlement_payouts": "SELECT, INSERT, UPDATE",
        "settlement_bank_transfers": "SELECT, INSERT, UPDATE",
        "api_request_log": "INSERT",
    },
}

# The worker's partition job (app/requestlog/partitions.py) creates and drops partitions,
# which only the table's owner may do: it calls this owner's function (migration 0009).
PARTITION_FUNCTION = "maintain_request_log_partitions(date, integer)"
FUNCTION_GRANTS = {API_ROLE: (PARTITION_FUNCTION,)}

_OWNED_SEQUENCES = """
SELECT s.oid::regclass::text FROM pg_depend d
JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
WHERE d.refobjid = CAST(:table AS regclass) AND d.deptype IN ('a', 'i')
"""


def restate(conn: Connection) -> None:
    """Create the runtime roles if missing (NOLOGIN: the deploy gives them a password, see
    `enable_login`), set their timeouts, and make their privileges exactly GRANTS."""
    for role in RUNTIME_ROLES:
        exists = conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
        if not exists:
            conn.execute(text(f"CREATE ROLE {role} NOLOGIN"))
        for name, value in ROLE_TIMEOUTS.items():
            conn.execute(text(f"ALTER ROLE {role} SET {name} = '{value}'"))
    present = set(conn.scalars(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")))
    for role, tables in GRANTS.items():
        # From nothing, so a privilege taken out of GRANTS is taken from the role too.
        conn.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}"))
        conn.execute(text(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role}"))
        for table, privileges in tables.items():
            if table not in present:
                continue
            conn.execute(text(f"GRANT {privileges} ON {table} TO {role}"))
            if "INSERT" in privileges:
                for sequence in conn.scalars(text(_OWNED_SEQUENCES), {"table": table}):
                    conn.execute(text(f"GRANT USAGE ON SEQUENCE {sequence} TO {role}"))
    for role, functions in FUNCTION_GRANTS.items():
        for function in functions:
            conn.execute(text(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC"))
            conn.execute(text(f"GRANT EXECUTE ON FUNCTION {function} TO {role}"))


async def enable_login(conn: AsyncConnection, *, role: str, password: str | None) -> None:
    """Let a runtime role log in, with `password` (None: no password, for the private
    servers' trust authentication on 127.0.0.1). Run as the owner or a superuser."""
    if role not in RUNTIME_ROLES:
        raise ValueError(f"not a runtime role: {role!r}")
    if password is None:
        await conn.execute(text(f"ALTER ROLE {role} LOGIN"))
        return
    # Sent as a parameter and quoted by the server (%L), so the password is never spliced
    # into SQL text or written to a statement log.
    await conn.execute(
        text("SELECT set_config('creditpool.role_password', :password, true)"),
        {"password": password},
    )
    await conn.execute(
        text(
            "DO $$ BEGIN EXECUTE format('ALTER ROLE %I LOGIN PASSWORD %L', "
            f"'{role}', current_setting('creditpool.role_password')); END $$"
        )
    )


def as_role(url: str, role: str) -> str:
    """The same server and database as `url`, as `role` (its password comes from elsewhere)."""
    return make_url(url).set(username=role, password=None).render_as_string(False)
