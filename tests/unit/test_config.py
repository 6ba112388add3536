import pytest
from pydantic import ValidationError

from app.config import DEFAULT_INTERNAL_TOKEN, DEFAULT_SECRET_KEY, Settings, to_asyncpg_url

STRONG = "s" * 40


def test_production_refuses_the_default_secret_key() -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(ENVIRONMENT="production", SECRET_KEY=DEFAULT_SECRET_KEY, INTERNAL_TOKEN=STRONG)


def test_production_refuses_the_default_internal_token() -> None:
    with pytest.raises(ValidationError, match="INTERNAL_TOKEN"):
        Settings(ENVIRONMENT="production", SECRET_KEY=STRONG, INTERNAL_TOKEN=DEFAULT_INTERNAL_TOKEN)


def test_production_refuses_a_short_secret() -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(ENVIRONMENT="production", SECRET_KEY="short", INTERNAL_TOKEN=STRONG)


def test_production_starts_with_real_secrets() -> None:
    settings = Settings(ENVIRONMENT="production", SECRET_KEY=STRONG, INTERNAL_TOKEN=STRONG + "x")
    assert not settings.is_dev


def test_dev_mode_allows_the_default_secrets() -> None:
    settings = Settings(ENVIRONMENT="dev")
    assert settings.SECRET_KEY == DEFAULT_SECRET_KEY
    assert settings.is_dev


def test_database_url_is_built_from_the_seed_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = Settings(
        ENVIRONMENT="test",
        DB_HOST="db",
        DB_PORT=6432,
        POSTGRES_USER="u",
        POSTGRES_PASSWORD="p",
        POSTGRES_DB="cp",
    )
    assert settings.database_url == "postgresql+asyncpg://u:p@db:6432/cp"


def test_database_url_wins_and_gets_the_asyncpg_driver() -> None:
    settings = Settings(ENVIRONMENT="test", DATABASE_URL="postgresql://x@h:1/d", DB_HOST="other")
    assert settings.database_url == "postgresql+asyncpg://x@h:1/d"
    assert to_asyncpg_url("postgres://a@b/c") == "postgresql+asyncpg://a@b/c"


def test_async_settlement_reads_the_seed_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYNC_SETTLEMENT", "1")
    monkeypatch.setenv("RL_MAX_REQUESTS", "0")
    settings = Settings(ENVIRONMENT="test")
    assert settings.ASYNC_SETTLEMENT is True
    assert settings.RL_MAX_REQUESTS == 0


def test_env_example_lists_every_setting() -> None:
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / ".env.example"
    names = {
        line.split("=", 1)[0].lstrip("# ").strip()
        for line in example.read_text().splitlines()
        if "=" in line
    }
    assert set(Settings.model_fields) <= names
