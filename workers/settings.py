"""arq worker entry point: `arq workers.settings.WorkerSettings`.

Each job is thin: open a session, call a service, commit.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from arq import cron
from arq.connections import RedisSettings

from app.config import get_settings
from app.db import create_engine, create_sessionmaker
from app.idempotency import repository as idempotency_keys


async def startup(ctx: dict[str, Any]) -> None:
    settings = get_settings()
    ctx["settings"] = settings
    ctx["engine"] = create_engine(settings, pool_size=5)
    ctx["sessionmaker"] = create_sessionmaker(ctx["engine"])


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["engine"].dispose()


async def purge_idempotency_keys(ctx: dict[str, Any]) -> int:
    """Forget completed idempotency keys older than their retention (24 h by default)."""
    hours = ctx["settings"].IDEMPOTENCY_KEY_TTL_HOURS
    cutoff = datetime.now(UTC) - timedelta(hours=hours)
    async with ctx["sessionmaker"]() as session, session.begin():
        return await idempotency_keys.delete_created_before(session, cutoff=cutoff)


class WorkerSettings:
    redis_settings = RedisSettings.from_dsn(get_settings().redis_url)
    on_startup = startup
    on_shutdown = shutdown
    functions: list[Any] = []
    cron_jobs = [cron(purge_idempotency_keys, minute={7}, run_at_startup=True)]
    health_check_interval = 30
