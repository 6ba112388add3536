"""Dev-only tools stay in dev: the load-test kit, and `make run`'s dev.env."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import DEV_ENV_FLAG, Settings
from app.models import Merchant
from tests.support.api import register
from tests.support.money import count_rows


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _production(settings: Settings) -> dict[str, str]:
    return os.environ | {
        "ENVIRONMENT": "production",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "INTERNAL_TOKEN": secrets.token_urlsafe(32),
        "DATABASE_URL": str(settings.DATABASE_URL),
        "REDIS_URL": str(settings.REDIS_URL),
    }


async def test_seed_reset_and_tokens_refuse_production_and_change_nothing(
    api: httpx.AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    assert (await register(api)).status_code == 201
    env = _production(settings)
    for command in (
        ["seed", "--merchants", "2", "--password", "p", "--reset"],
        ["tokens", "--count", "1"],
    ):
        result = _run(env, "-m", "app", *command)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert "refusing" in result.stderr and "ENVIRONMENT=production" in result.stderr
    assert await count_rows(sessionmaker, Merchant) == 1  # the reset never ran


def _stale_dev_env(tmp_path: Path) -> dict[str, str]:
    """A checkout where `make run` once ran and died, leaving dev.env behind."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "dev.env").write_text("ENVIRONMENT=dev\n")
    env = {k: v for k, v in os.environ.items() if k not in {"ENVIRONMENT", DEV_ENV_FLAG}}
    return env | {"EMBEDDED_DATA_DIR": str(data)}


def test_a_server_started_by_hand_ignores_a_stale_dev_env(tmp_path: Path) -> None:
    """Production mode with the default secrets refuses to start, dev.env or not."""
    env = _stale_dev_env(tmp_path)
    by_hand = _run(env, "-c", "import app.main")
    assert by_hand.returncode != 0
    assert "INTERNAL_TOKEN must be set" in by_hand.stderr
    # The processes `make run` starts carry the flag and do read it.
    assert _run(env | {DEV_ENV_FLAG: "1"}, "-c", "import app.main").returncode == 0


def test_cli_commands_read_dev_env_and_say_so(tmp_path: Path, settings: Settings) -> None:
    env = _stale_dev_env(tmp_path) | {"DATABASE_URL": str(settings.DATABASE_URL)}
    audit = _run(env, "-m", "app", "audit")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert f"using {tmp_path / 'data' / 'dev.env'}" in audit.stderr
