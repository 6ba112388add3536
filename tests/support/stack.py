"""Throwaway real PostgreSQL and Redis for the test session, from the same provisioning code
that `make run` uses."""

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from app.dev.embedded import EmbeddedPostgres, EmbeddedRedis
from app.dev.embedded.process import free_port


@dataclass(frozen=True)
class ServerStack:
    postgres: EmbeddedPostgres
    redis: EmbeddedRedis

    @property
    def database_url(self) -> str:
        return self.postgres.url

    @property
    def redis_url(self) -> str:
        return self.redis.url


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
