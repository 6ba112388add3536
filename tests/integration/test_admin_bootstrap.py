import os
import re
import subprocess
import sys

import httpx
import pytest

from app.config import Settings
from app.devstack import bootstrap_admin
from tests.support.api import login


async def test_make_run_generates_and_prints_the_admin_password_once(
    api: httpx.AsyncClient, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings.model_copy(update={"ADMIN_USERNAME": "root-admin", "ADMIN_PASSWORD": None})
    await bootstrap_admin(settings)
    printed = capsys.readouterr().out
    password = re.search(r"generated password: (\S+)", printed)
    assert password, printed
    await bootstrap_admin(settings)
    assert "password" not in capsys.readouterr().out
    tokens = await login(api, "root-admin", password.group(1))
    merchants = await api.get(
        "/api/v1/admin/merchants", headers={"Authorization": f"Bearer {tokens['access']}"}
    )
    assert merchants.status_code == 200


def _create_admin(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"ENVIRONMENT": "test", "DATABASE_URL": str(settings.DATABASE_URL)}
    return subprocess.run(
        [sys.executable, "-m", "app", "create-admin", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


async def test_create_admin_command_is_idempotent(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    first = _create_admin(settings, "--username", "ops", "--password", "ops-password-1")
    assert first.returncode == 0, first.stderr
    assert "created" in first.stdout
    again = _create_admin(settings, "--username", "ops", "--password", "ops-password-2")
    assert again.returncode == 0
    assert "updated" in again.stdout
    await login(api, "ops", "ops-password-2")


async def test_create_admin_refuses_a_short_password(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    result = _create_admin(settings, "--username", "ops", "--password", "short")
    assert result.returncode == 2
    assert "at least" in result.stdout
