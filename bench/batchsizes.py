"""Batch sizes per batcher over one run, from the `creditpool_batch_size` histogram.

The api's /metrics is scraped before and after a run (with several uvicorn workers, and the arq
worker sharing the api's PROMETHEUS_MULTIPROC_DIR, one scrape holds every process); the
difference of the two is that run's batches.
"""

import math

import httpx
from prometheus_client.parser import text_string_to_metric_families

METRIC = "creditpool_batch_size"

# batcher -> ({upper bound: cumulative count}, sum, count)
Histograms = dict[str, tuple[dict[float, float], float, float]]


def parse(text: str) -> Histograms:
    """Each batcher's histogram in a Prometheus text exposition."""
    found: Histograms = {}
    for family in text_string_to_metric_families(text):
        if family.name != METRIC:
            continue
        for sample in family.samples:
            batcher = sample.labels.get("batcher")
            if batcher is None:
                continue
            buckets, total, count = found.get(batcher, ({}, 0.0, 0.0))
            if sample.name == f"{METRIC}_bucket":
                buckets[float(sample.labels["le"])] = sample.value
            elif sample.name == f"{METRIC}_sum":
                total = sample.value
            elif sample.name == f"{METRIC}_count":
                count = sample.value
            found[batcher] = (buckets, total, count)
    return found


def scrape(metrics_url: str) -> Histograms:
    """The histograms now; none if the endpoint does not answer or has no such metric."""
    try:
        response = httpx.get(metrics_url, timeout=10)
    except httpx.HTTPError:
        return {}
    return parse(response.text) if response.status_code == 200 else {}


def quantile(buckets: dict[float, float], fraction: float) -> float:
    """Prometheus' histogram_quantile: linear within the bucket that holds the rank."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] == 0:
        return 0.0
    rank = fraction * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        cumulative = buckets[bound]
        if cumulative >= rank:
            if math.isinf(bound):
                return lower  # above the last finite bound: its bound is all we know
            inside = cumulative - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, cumulative
    return lower


def batch_sizes(before: Histograms, after: Histograms) -> dict[str, dict[str, float]]:
    """{batcher: {mean, p50, p95}} of the batches between two scrapes."""
    sizes = {}
    for batcher, (buckets, total, count) in after.items():
        old_buckets, old_total, old_count = before.get(batcher, ({}, 0.0, 0.0))
        batches = count - old_count
        if batches <= 0:
            continue
        delta = {bound: n - old_buckets.get(bound, 0.0) for bound, n in buckets.items()}
        sizes[batcher] = {
            "mean": round((total - old_total) / batches, 1),
            "p50": round(quantile(delta, 0.50), 1),
            "p95": round(quantile(delta, 0.95), 1),
        }
    return sizes
