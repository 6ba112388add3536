import os
import re
import subprocess
import sys

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.admins import AdminRefused
from app.auth.passwords import hash_password
from app.config import Settings
from app.dev.devstack import bootstrap_admin
from tests.support.api import PASSWORD, bearer, login, register
from tests.support.factories import create_user


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


async def test_create_admin_creates_only_and_never_touches_an_existing_admin(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    first = _create_admin(settings, "--username", "ops", "--password", "ops-password-1")
    assert first.returncode == 0, first.stderr
    assert "created" in first.stdout
    again = _create_admin(settings, "--username", "ops", "--password", "ops-password-2")
    assert again.returncode == 2
    assert "already exists" in again.stdout
    await login(api, "ops", "ops-password-1")


async def test_create_admin_never_promotes_a_registered_merchant(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    """Registration is public: squatting the admin's name must not make the squatter admin."""
    assert (await register(api, username="admin", password=PASSWORD)).status_code == 201
    for args in (
        ("--username", "admin"),  # no TTY, no password: once kept the squatter's password
        ("--username", "admin", "--promote", "--password", "ops-password-1"),
    ):
        result = _create_admin(settings, *args)
        assert result.returncode == 2, (args, result.stdout)
    assert "merchant" in result.stdout
    squatter = await login(api, "admin", PASSWORD)
    admin_only = await api.get("/api/v1/admin/merchants", headers=bearer(squatter["access"]))
    assert admin_only.status_code == 403


async def test_promote_makes_an_existing_user_without_a_merchant_an_admin(
    api: httpx.AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with sessionmaker() as session, session.begin():
        await create_user(session, username="operator", password_hash=hash_password("old-pass-1"))
    assert _create_admin(settings, "--username", "operator").returncode == 2  # no --promote
    promoted = _create_admin(
        settings, "--username", "operator", "--promote", "--password", "new-pass-12"
    )
    assert promoted.returncode == 0, promoted.stdout
    tokens = await login(api, "operator", "new-pass-12")
    merchants = await api.get("/api/v1/admin/merchants", headers=bearer(tokens["access"]))
    assert merchants.status_code == 200
    missing = _create_admin(settings, "--username", "nobody", "--promote")
    assert missing.returncode == 2
    assert "no user" in missing.stdout


async def test_make_run_bootstrap_refuses_a_merchant_named_like_the_admin(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    assert (await register(api, username="root-admin", password=PASSWORD)).status_code == 201
    settings = settings.model_copy(update={"ADMIN_USERNAME": "root-admin", "ADMIN_PASSWORD": None})
    with pytest.raises(AdminRefused, match="not an admin"):
        await bootstrap_admin(settings)
    squatter = await login(api, "root-admin", PASSWORD)
    admin_only = await api.get("/api/v1/admin/merchants", headers=bearer(squatter["access"]))
    assert admin_only.status_code == 403


async def test_bootstrap_with_a_new_admin_password_revokes_the_admins_tokens(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    settings = settings.model_copy(
        update={"ADMIN_USERNAME": "root-admin", "ADMIN_PASSWORD": "first-password"}
    )
    await bootstrap_admin(settings)
    old = await login(api, "root-admin", "first-password")
    await bootstrap_admin(settings)  # the same password: nothing changes
    assert (await api.get("/api/v1/admin/pool", headers=bearer(old["access"]))).status_code == 200
    await bootstrap_admin(settings.model_copy(update={"ADMIN_PASSWORD": "second-password"}))
    revoked = await api.get("/api/v1/admin/pool", headers=bearer(old["access"]))
    assert revoked.status_code == 401
    assert revoked.json()["code"] == "INVALID_TOKEN"
    refresh = await api.post("/api/v1/auth/token/refresh", json={"refresh": old["refresh"]})
    assert refresh.status_code == 401
    await login(api, "root-admin", "second-password")


async def test_create_admin_refuses_a_short_password(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    result = _create_admin(settings, "--username", "ops", "--password", "short")
    assert result.returncode == 2
    assert "at least" in result.stdout
