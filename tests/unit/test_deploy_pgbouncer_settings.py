"""DB_PGBOUNCER is said, never guessed: a pooler may listen anywhere, PostgreSQL on 6432."""

import pytest

from app.config import Settings
from app.db import connect_args


def parts(port: int, **overrides: object) -> Settings:
    return Settings(ENVIRONMENT="test", DATABASE_URL=None, DB_HOST="db", DB_PORT=port, **overrides)  # type: ignore[arg-type]


def test_port_6432_alone_does_not_turn_on_pgbouncer_mode() -> None:
    assert not parts(6432).behind_pgbouncer
    url = Settings(ENVIRONMENT="test", DATABASE_URL="postgresql://u@bouncer:6432/creditpool")
    assert not url.behind_pgbouncer


def test_db_pgbouncer_turns_it_on_for_any_port(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parts(7000, DB_PGBOUNCER=True).behind_pgbouncer
    monkeypatch.setenv("DB_PGBOUNCER", "true")
    assert parts(5432).behind_pgbouncer


TIMEOUTS = {
    "DB_STATEMENT_TIMEOUT_MS": 300,
    "DB_LOCK_TIMEOUT_MS": 200,
    "DB_IDLE_IN_TRANSACTION_TIMEOUT_MS": 1000,
}


def test_both_modes_bound_every_statement_on_the_client_too() -> None:
    direct, pooled = connect_args(parts(5432)), connect_args(parts(6432, DB_PGBOUNCER=True))
    assert direct["command_timeout"] == pooled["command_timeout"] == 10.0
    # By default the server-side timeouts are the runtime roles' own (migration 0009): one
    # source, which holds through any pooler; nothing is sent at connect.
    assert (
        direct["server_settings"] == pooled["server_settings"] == {"application_name": "creditpool"}
    )
    assert pooled["statement_cache_size"] == 0


def test_timeout_overrides_go_to_direct_connections_only() -> None:
    direct = connect_args(parts(5432, **TIMEOUTS))
    assert direct["server_settings"] == {
        "application_name": "creditpool",
        "statement_timeout": "300",
        "lock_timeout": "200",
        "idle_in_transaction_session_timeout": "1000",
    }
    # A pooler refuses unknown startup parameters and shares server connections.
    pooled = connect_args(parts(6432, DB_PGBOUNCER=True, **TIMEOUTS))
    assert pooled["server_settings"] == {"application_name": "creditpool"}
