"""Throwaway real PostgreSQL and Redis for the test session, from the same provisioning code
that `make run` uses: migrated as the owner (the superuser), used as the runtime roles."""

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from app.config import Settings
from app.database_roles import API_ROLE, SETTLEMENT_ROLE, as_role
from app.dev.embedded import EmbeddedPostgres, EmbeddedRedis
from app.dev.embedded.process import free_port


@dataclass(frozen=True)
class ServerStack:
    postgres: EmbeddedPostgres
    redis: EmbeddedRedis

    @property
    def database_url(self) -> str:
        """The api's, worker's and CLI's: the creditpool_api role."""
        return self.postgres.url_for(API_ROLE)

    @property
    def settlement_database_url(self) -> str:
        return self.postgres.url_for(SETTLEMENT_ROLE)

    @property
    def owner_url(self) -> str:
        """The superuser: migrations, the clean-up between tests, tests that corrupt the books."""
        return self.postgres.url

    @property
    def redis_url(self) -> str:
        return self.redis.url


def settlement_settings(settings: Settings) -> Settings:
    """`settings` for a settlement app: its own runtime role on the same database."""
    if settings.DATABASE_URL is None:  # built from the parts (PgBouncer's tests)
        return settings.model_copy(update={"POSTGRES_USER": SETTLEMENT_ROLE})
    return settings.model_copy(
        update={"DATABASE_URL": as_role(settings.DATABASE_URL, SETTLEMENT_ROLE)}
    )


@contextmanager
def running_stack() -> Iterator[ServerStack]:
    root = Path(tempfile.mkdtemp(prefix="creditpool-test-"))
    postgres = EmbeddedPostgres(root / "postgres", port=free_port(), durable=False)
    redis = EmbeddedRedis(root / "redis", port=free_port(), durable=False)
    try:
        postgres.start()
        redis.start()
        yield ServerStack(postgres=postgres, redis=redis)
    finally:
        redis.stop()
        postgres.stop()
        shutil.rmtree(root, ignore_errors=True)
