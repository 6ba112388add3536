"""DB_PORT=6432 is all an operator changes to put PgBouncer in front of PostgreSQL."""

from typing import Any

import pytest

from app.config import Settings


def parts(port: int, **overrides: Any) -> Settings:
    return Settings(ENVIRONMENT="test", DATABASE_URL=None, DB_HOST="db", DB_PORT=port, **overrides)


def test_port_6432_means_pgbouncer() -> None:
    assert parts(6432).behind_pgbouncer
    assert not parts(5432).behind_pgbouncer


def test_a_database_url_on_6432_means_pgbouncer_too() -> None:
    via_url = Settings(ENVIRONMENT="test", DATABASE_URL="postgresql://u@bouncer:6432/creditpool")
    assert via_url.behind_pgbouncer
    direct = Settings(ENVIRONMENT="test", DATABASE_URL="postgresql://u@db/creditpool")
    assert not direct.behind_pgbouncer


def test_db_pgbouncer_overrides_the_port_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parts(7000, DB_PGBOUNCER=True).behind_pgbouncer
    assert not parts(6432, DB_PGBOUNCER=False).behind_pgbouncer
    monkeypatch.setenv("DB_PGBOUNCER", "true")
    assert parts(5432).behind_pgbouncer
