"""Every Prometheus metric of both apps, and their exposition.

Counters and histograms only: they add up correctly across uvicorn workers in
prometheus-client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR). Money gauges (pool available,
in flight) are read from PostgreSQL at scrape time instead, so every worker reports the same
truth and nothing has to be kept in step with the database.
"""

import os
from collections.abc import Iterable

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

HTTP_REQUESTS = Counter(
    "creditpool_http_requests",
    "HTTP requests answered, by app, method, route template and status.",
    ["service", "method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "creditpool_http_request_duration_seconds",
    "Time from receiving a request to the end of its response, by route template and status.",
    ["service", "method", "route", "status"],
)
WITHDRAWALS = Counter(
    "creditpool_withdrawals",
    "Withdrawals by outcome once committed: reserved (accepted, money in flight), settled "
    "(paid, SUCCESS) or released (refused by the bank, FAILED).",
    ["outcome"],
)
BATCH_SIZE = Histogram(
    "creditpool_batch_size",
    "Members per batch of each batcher (app/batching.py), e.g. reserve and finish.",
    ["batcher"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
SETTLEMENT_LATENCY = Histogram(
    "creditpool_settlement_request_duration_seconds",
    "Core -> settlement HTTP calls until response headers, by method and status (or error).",
    ["method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SETTLEMENT_UNKNOWN_OUTCOMES = Counter(
    "creditpool_settlement_unknown_outcomes",
    "Settlement answers that are not its recorded PAID or REFUSED for the withdrawal asked "
    "about (unreachable, timeout, an HTTP error status, PENDING, a body for another id), by "
    "reason: the withdrawal stays PROCESSING for the reconciler.",
    ["reason"],
)
IDEMPOTENT_REPLAYS = Counter(
    "creditpool_idempotent_replays",
    "Requests answered from a stored Idempotency-Key response (Idempotent-Replayed: true).",
)
RATE_LIMIT_REJECTIONS = Counter(
    "creditpool_ratelimit_rejections",
    "Requests refused with 429 RATE_LIMITED, by limit.",
    ["limit"],
)
RATE_LIMIT_UNAVAILABLE = Counter(
    "creditpool_ratelimit_unavailable",
    "Requests let through unlimited because Redis did not answer (the limiter fails open).",
    ["limit"],
)
REQUEST_LOG_WRITTEN = Counter(
    "creditpool_request_log_written_rows",
    "Request log rows written to api_request_log, by app.",
    ["service"],
)
REQUEST_LOG_DROPPED = Counter(
    "creditpool_request_log_dropped_rows",
    "Request log rows lost: buffer_full (the writer fell behind), write_failed, shutdown.",
    ["service", "reason"],
)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class _Families:
    """A one-off collector for metric families computed at scrape time."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


def exposition(scraped: Iterable[Metric] = ()) -> bytes:
    """The Prometheus text format: this process's metrics (or all workers'), then `scraped`."""
    if multiprocess_dir():
        # Every worker writes its samples to files in the shared directory; any worker's
        # /metrics reads them all, so totals are right whichever worker Prometheus reaches.
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    return body + generate_latest(_Families(scraped))
