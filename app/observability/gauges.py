"""Money gauges read from PostgreSQL when Prometheus scrapes the api."""

import logging
from collections.abc import Awaitable, Callable

from fastapi import Request
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy import text

logger = logging.getLogger("app.metrics")

# A scrape-time probe: metric families computed for one scrape.
Probe = Callable[[Request], Awaitable[list[Metric]]]

# One cheap round trip: the single pool row, and the in-flight withdrawals found through
# ix_withdrawals_status_updated (only QUEUED/PROCESSING rows are read, never the history).
_MONEY_SQL = text(
    """
    SELECT
        (SELECT coalesce(sum(available), 0) FROM credit_pool) AS pool_available,
        coalesce(sum(amount), 0) AS in_flight_amount,
        count(*) AS in_flight_count
    FROM withdrawals
    WHERE status IN ('QUEUED', 'PROCESSING')
    """
)


async def money_gauges(request: Request) -> list[Metric]:
    """Pool available, amount and number of withdrawals in flight; none if the DB is down."""
    try:
        async with request.app.state.engine.connect() as conn:
            row = (await conn.execute(_MONEY_SQL)).one()
    except Exception as exc:  # a scrape must still answer while the database is away
        logger.warning("money gauges unavailable: %s", type(exc).__name__)
        return []
    return [
        GaugeMetricFamily(
            "creditpool_pool_available",
            "Credit pool available (currency units).",
            value=float(row.pool_available),
        ),
        GaugeMetricFamily(
            "creditpool_in_flight_amount",
            "Reserved for QUEUED/PROCESSING withdrawals, outcome not final (currency units).",
            value=float(row.in_flight_amount),
        ),
        GaugeMetricFamily(
            "creditpool_in_flight_withdrawals",
            "QUEUED/PROCESSING withdrawals.",
            value=float(row.in_flight_count),
        ),
    ]
