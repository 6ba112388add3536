"""Gauges of stuck work, read from PostgreSQL when Prometheus scrapes the api."""

import logging

from fastapi import Request
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from app.operations import repository

logger = logging.getLogger("app.metrics")


async def open_withdrawal_gauges(request: Request) -> list[Metric]:
    """The oldest open withdrawal's age and the open ones by attempts; none if the DB is down."""
    try:
        async with request.app.state.engine.connect() as conn:
            summary = await repository.open_summary(conn)
    except Exception as exc:  # a scrape must still answer while the database is away
        logger.warning("open withdrawal gauges unavailable: %s", type(exc).__name__)
        return []
    oldest = GaugeMetricFamily(
        "creditpool_oldest_open_withdrawal_age_seconds",
        "Age of the oldest QUEUED/PROCESSING withdrawal (0 when none is open).",
        value=summary.oldest_age_s,
    )
    by_attempts = GaugeMetricFamily(
        "creditpool_open_withdrawals_by_attempts",
        "QUEUED/PROCESSING withdrawals by payout attempts so far (5+ together).",
        labels=["attempts"],
    )
    for attempts, count in sorted(summary.by_attempts.items()):
        by_attempts.add_metric([attempts], count)
    low_water = GaugeMetricFamily(
        "creditpool_pool_low_water",
        "POOL_LOW_WATER: the pool alert's threshold (currency units).",
        value=float(request.app.state.settings.POOL_LOW_WATER),
    )
    return [oldest, by_attempts, low_water]
