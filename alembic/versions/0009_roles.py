"""roles: least-privilege runtime roles, their timeouts, a TRUNCATE guard on the ledger

Revision ID: 0009
Revises: 0008

The runtime roles creditpool_api and creditpool_settlement are created NOLOGIN if missing
(roles belong to the cluster; their passwords are the deploy's, app/database_roles.py
`enable_login`), get statement/lock/idle-in-transaction timeouts as role settings (they hold
behind any pooler) and exactly the privileges of app/database_roles.py GRANTS; they own
nothing. Every later migration that creates a table adds it to GRANTS and calls
`database_roles.restate`. Run as the owner: a superuser, or a role with CREATEROLE (PostgreSQL
16+: it administers the roles it creates).
"""

from collections.abc import Sequence

from alembic import op
from app import database_roles

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# TRUNCATE skips row triggers, so the append-only trigger (0001) cannot see it; this one
# refuses it for everyone, the owner included (the test suite's clean-up runs as a superuser
# with session_replication_role = replica, which fires no ordinary trigger).
_TRUNCATE_GUARD = (
    """
    CREATE OR REPLACE FUNCTION ledger_entries_no_truncate() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'ledger_entries is append-only (TRUNCATE refused)'
            USING ERRCODE = 'insufficient_privilege';
    END $$
    """,
    "CREATE OR REPLACE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries"
    " FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_no_truncate()",
)

# Creating and dropping partitions needs the parent's owner: the api role runs this owner's
# function instead (SECURITY DEFINER, a pinned search_path and schema-qualified names, so no
# object of the caller's can stand in). Names and bounds come from dates only.
_PARTITION_FUNCTION = r"""
CREATE OR REPLACE FUNCTION maintain_request_log_partitions(today date, retention_days integer)
RETURNS TABLE (change text, partition_name text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    day date;
    part text;
BEGIN
    IF retention_days IS NULL OR retention_days < 1 THEN
        RAISE EXCEPTION 'retention_days must be at least 1';
    END IF;
    FOREACH day IN ARRAY ARRAY[today, today + 1] LOOP
        part := 'api_request_log_p' || to_char(day, 'YYYYMMDD');
        IF to_regclass('public.' || part) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE public.%I PARTITION OF public.api_request_log'
                ' FOR VALUES FROM (%L) TO (%L)',
                part, day::text || ' 00:00:00+00', (day + 1)::text || ' 00:00:00+00'
            );
            change := 'created';
            partition_name := part;
            RETURN NEXT;
        END IF;
    END LOOP;
    FOR part IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'public.api_request_log'::regclass ORDER BY c.relname
    LOOP
        IF part ~ '^api_request_log_p\d{8}$'
            AND to_date(substr(part, 18), 'YYYYMMDD') < today - retention_days THEN
            EXECUTE format('DROP TABLE public.%I', part);
            change := 'dropped';
            partition_name := part;
            RETURN NEXT;
        END IF;
    END LOOP;
END $$
"""


def upgrade() -> None:
    for statement in _TRUNCATE_GUARD:
        op.execute(statement)
    op.execute(_PARTITION_FUNCTION)
    database_roles.restate(op.get_bind())


def downgrade() -> None:
    # The roles stay (other databases of the cluster may use them); what they may do here goes.
    for role in database_roles.RUNTIME_ROLES:
        op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
        op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role}")
    op.execute(f"DROP FUNCTION IF EXISTS {database_roles.PARTITION_FUNCTION}")
    op.execute("DROP TRIGGER IF EXISTS ledger_entries_no_truncate ON ledger_entries")
    op.execute("DROP FUNCTION IF EXISTS ledger_entries_no_truncate()")
