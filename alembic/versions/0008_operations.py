"""operations: api_request_log partitioned by day (UTC)

Revision ID: 0008
Revises: 0007

Native declarative partitioning, one partition per UTC day named api_request_log_pYYYYMMDD, so
retention drops whole days (app/requestlog/partitions.py, run by the worker) instead of
deleting rows. Existing rows move into partitions of their days; today's and tomorrow's exist
from here on. The primary key includes created_at, as PostgreSQL requires of a partitioned one.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = """
    created_at timestamptz NOT NULL,
    service varchar(16) NOT NULL,
    method varchar(8) NOT NULL,
    path varchar(512) NOT NULL,
    status integer NOT NULL,
    duration_ms double precision NOT NULL,
    actor varchar(80),
    request_id varchar(128),
    client_addr varchar(64),
    idempotency_key varchar(255),
    withdrawal_id uuid
"""

# Set aside the table as it is, with its indexes renamed: the new ones take the old names.
_SET_ASIDE = (
    "ALTER TABLE api_request_log RENAME TO api_request_log_old",
    "ALTER INDEX pk_api_request_log RENAME TO pk_api_request_log_old",
    "ALTER INDEX ix_api_request_log_created_at RENAME TO ix_api_request_log_created_at_old",
    "ALTER INDEX ix_api_request_log_actor_created RENAME TO ix_api_request_log_actor_created_old",
)

# A partition for every day that has rows, and for today and tomorrow.
_DAILY_PARTITIONS = """
DO $$
DECLARE
    day date;
BEGIN
    FOR day IN
        SELECT generate_series(
            least(
                (SELECT min((created_at AT TIME ZONE 'UTC')::date) FROM api_request_log_old),
                (now() AT TIME ZONE 'UTC')::date
            ),
            (now() AT TIME ZONE 'UTC')::date + 1,
            interval '1 day'
        )::date
    LOOP
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF api_request_log FOR VALUES FROM (%L) TO (%L)',
            'api_request_log_p' || to_char(day, 'YYYYMMDD'),
            day::text || ' 00:00:00+00',
            (day + 1)::text || ' 00:00:00+00'
        );
    END LOOP;
END
$$
"""

_ALL = (
    "id, created_at, service, method, path, status, duration_ms, actor, request_id, "
    "client_addr, idempotency_key, withdrawal_id"
)


def upgrade() -> None:
    for statement in _SET_ASIDE:
        op.execute(statement)
    op.execute(
        f"""
        CREATE TABLE api_request_log (
            id bigint NOT NULL DEFAULT nextval('api_request_log_id_seq'),
            {COLUMNS},
            CONSTRAINT pk_api_request_log PRIMARY KEY (id, created_at)
        ) PARTITION BY RANGE (created_at)
        """
    )
    op.execute("CREATE INDEX ix_api_request_log_created_at ON api_request_log (created_at)")
    op.execute(
        "CREATE INDEX ix_api_request_log_actor_created ON api_request_log (actor, created_at)"
    )
    # Before the old table goes: its drop would take the sequence with it.
    op.execute("ALTER SEQUENCE api_request_log_id_seq OWNED BY api_request_log.id")
    op.execute(_DAILY_PARTITIONS)
    op.execute(f"INSERT INTO api_request_log ({_ALL}) SELECT {_ALL} FROM api_request_log_old")  # noqa: S608
    op.execute("DROP TABLE api_request_log_old")


def downgrade() -> None:
    for statement in _SET_ASIDE:
        op.execute(statement)
    op.execute(
        f"""
        CREATE TABLE api_request_log (
            id bigint NOT NULL DEFAULT nextval('api_request_log_id_seq'),
            {COLUMNS},
            CONSTRAINT pk_api_request_log PRIMARY KEY (id)
        )
        """
    )
    op.execute("CREATE INDEX ix_api_request_log_created_at ON api_request_log (created_at)")
    op.execute(
        "CREATE INDEX ix_api_request_log_actor_created ON api_request_log (actor, created_at)"
    )
    op.execute("ALTER SEQUENCE api_request_log_id_seq OWNED BY api_request_log.id")
    op.execute(f"INSERT INTO api_request_log ({_ALL}) SELECT {_ALL} FROM api_request_log_old")  # noqa: S608
    op.execute("DROP TABLE api_request_log_old")
