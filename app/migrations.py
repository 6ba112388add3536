"""Run Alembic from code (the CLI, `make run` and the tests share this), as the owner."""

import asyncio
from collections.abc import Mapping
from pathlib import Path

from alembic.config import Config
from sqlalchemy.ext.asyncio import create_async_engine

from alembic import command
from app import database_roles
from app.config import to_asyncpg_url

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"


def alembic_config(database_url: str | None = None) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.attributes["configure_logger"] = False
    if database_url:
        config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str | None = None, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)


def enable_logins(database_url: str, passwords: Mapping[str, str | None]) -> None:
    """Give runtime roles LOGIN, each with its password (None: none, for trust
    authentication), connected as the owner `database_url`."""

    async def main() -> None:
        engine = create_async_engine(to_asyncpg_url(database_url))
        try:
            async with engine.begin() as conn:
                for role, password in passwords.items():
                    await database_roles.enable_login(conn, role=role, password=password)
        finally:
            await engine.dispose()

    asyncio.run(main())
