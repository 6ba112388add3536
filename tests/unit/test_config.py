from pathlib import Path

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
    assert settings.secret_key == DEFAULT_SECRET_KEY
    assert settings.is_dev


def test_settlement_and_the_worker_run_in_production_without_a_secret_key() -> None:
    """Only the api signs tokens; Compose blanks SECRET_KEY for the others."""
    for blank in ({}, {"SECRET_KEY": ""}):
        settings = Settings(ENVIRONMENT="production", INTERNAL_TOKEN=STRONG, **blank)
        assert settings.SECRET_KEY is None
        with pytest.raises(RuntimeError, match="SECRET_KEY"):
            _ = settings.secret_key


def test_the_settlement_app_is_built_in_production_without_a_secret_key() -> None:
    from app.settlement.main import create_app

    assert create_app(Settings(ENVIRONMENT="production", INTERNAL_TOKEN=STRONG)) is not None


def test_the_api_refuses_to_start_in_production_without_a_secret_key() -> None:
    from app.main import create_app

    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(Settings(ENVIRONMENT="production", INTERNAL_TOKEN=STRONG))


def test_migrations_use_the_owner_url_else_the_processes_own() -> None:
    runtime = "postgresql://creditpool_api@db/creditpool"
    single = Settings(ENVIRONMENT="test", DATABASE_URL=runtime, MIGRATION_DATABASE_URL=None)
    assert single.migration_database_url == "postgresql+asyncpg://creditpool_api@db/creditpool"
    owner = Settings(
        ENVIRONMENT="test",
        DATABASE_URL=runtime,
        MIGRATION_DATABASE_URL="postgres://o@db/creditpool",
    )
    assert owner.migration_database_url == "postgresql+asyncpg://o@db/creditpool"
    assert owner.database_url == "postgresql+asyncpg://creditpool_api@db/creditpool"


def test_migrate_gives_login_only_to_the_roles_whose_password_it_holds() -> None:
    settings = Settings(ENVIRONMENT="test", API_DB_PASSWORD=None, SETTLEMENT_DB_PASSWORD="pw")
    assert settings.runtime_role_passwords == {"creditpool_settlement": "pw"}


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


def test_dev_mode_password_minimum_is_one_so_the_seed_walkthrough_works() -> None:
    assert Settings(ENVIRONMENT="dev").password_min_length == 1
    assert Settings(ENVIRONMENT="test").password_min_length == 8
    strong = {"SECRET_KEY": STRONG, "INTERNAL_TOKEN": STRONG}
    assert Settings(ENVIRONMENT="production", **strong).password_min_length == 8
    assert (
        Settings(ENVIRONMENT="production", PASSWORD_MIN_LENGTH=12, **strong).password_min_length
        == 12
    )


def test_production_refuses_a_password_minimum_below_eight() -> None:
    with pytest.raises(ValidationError, match="PASSWORD_MIN_LENGTH"):
        Settings(
            ENVIRONMENT="production",
            SECRET_KEY=STRONG,
            INTERNAL_TOKEN=STRONG,
            PASSWORD_MIN_LENGTH=7,
        )
    assert Settings(ENVIRONMENT="dev", PASSWORD_MIN_LENGTH=1).password_min_length == 1


@pytest.mark.parametrize("knob", [{"BANK_LATENCY_MS": 5}, {"BANK_FAILURE_RATE": 0.1}])
def test_production_refuses_the_simulated_banks_fault_injection(knob: dict[str, float]) -> None:
    with pytest.raises(ValidationError, match="dev/test only"):
        Settings(ENVIRONMENT="production", SECRET_KEY=STRONG, INTERNAL_TOKEN=STRONG, **knob)
    assert Settings(ENVIRONMENT="test", **knob).model_dump().items() >= knob.items()


def test_dev_env_file_is_read_only_under_the_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stale `.data/dev.env` must not put a server started by hand into dev mode."""
    from app import config

    dev_env = tmp_path / "dev.env"
    dev_env.write_text("ENVIRONMENT=dev\n")
    monkeypatch.setattr(config, "DEV_ENV_FILE", str(dev_env))
    monkeypatch.delenv("ENVIRONMENT", raising=False)
    monkeypatch.delenv(config.DEV_ENV_FLAG, raising=False)
    strong = {"SECRET_KEY": STRONG, "INTERNAL_TOKEN": STRONG}
    assert Settings(_env_file=config.env_files(), **strong).ENVIRONMENT == "production"
    monkeypatch.setenv(config.DEV_ENV_FLAG, "1")
    assert Settings(_env_file=config.env_files(), **strong).ENVIRONMENT == "dev"
