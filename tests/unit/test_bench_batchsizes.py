"""Batch sizes per batcher from the api's Prometheus text, before and after a run."""

import pytest

from bench.batchsizes import batch_sizes, parse, quantile


def exposition(reserve: list[int], finish: list[int]) -> str:
    """The histogram as prometheus-client writes it, buckets 1, 2, 4, 8, 16, 32, 64, 128."""
    lines = [
        "# HELP creditpool_batch_size Members per batch",
        "# TYPE creditpool_batch_size histogram",
    ]
    for batcher, sizes in (("reserve", reserve), ("finish", finish)):
        for bound in (1, 2, 4, 8, 16, 32, 64, 128):
            below = sum(1 for size in sizes if size <= bound)
            labels = f'batcher="{batcher}",le="{bound}.0"'
            lines.append(f"creditpool_batch_size_bucket{{{labels}}} {below}")
        lines.append(f'creditpool_batch_size_bucket{{batcher="{batcher}",le="+Inf"}} {len(sizes)}')
        lines.append(f'creditpool_batch_size_count{{batcher="{batcher}"}} {len(sizes)}')
        lines.append(f'creditpool_batch_size_sum{{batcher="{batcher}"}} {sum(sizes)}')
    lines.append("# HELP other_total Something else")
    lines.append("# TYPE other_total counter")
    lines.append("other_total 5.0")
    return "\n".join(lines) + "\n"


def test_only_the_batches_between_the_two_scrapes_count() -> None:
    before = parse(exposition(reserve=[1, 1, 1], finish=[]))
    # During the run: reserve batches of 10 (x9) and 100 (x1); finish batches of 3 (x4).
    after = parse(exposition(reserve=[1, 1, 1, *[10] * 9, 100], finish=[3, 3, 3, 3]))
    sizes = batch_sizes(before, after)
    assert sizes.keys() == {"reserve", "finish"}
    assert sizes["reserve"]["mean"] == 19.0  # (90 + 100) / 10
    # Nine of ten batches are in the (8, 16] bucket: the median interpolates inside it.
    assert 8 < sizes["reserve"]["p50"] <= 16
    assert 8 < sizes["reserve"]["p95"] <= 128
    assert sizes["finish"] == {"mean": 3.0, "p50": pytest.approx(3.0), "p95": pytest.approx(3.9)}


def test_a_batcher_with_no_batch_in_the_run_and_a_missing_metric_give_nothing() -> None:
    same = parse(exposition(reserve=[4, 4], finish=[]))
    assert batch_sizes(same, same) == {}
    assert parse("# TYPE other_total counter\nother_total 5.0\n") == {}
    assert batch_sizes({}, {}) == {}


def test_quantile_interpolates_like_prometheus_histogram_quantile() -> None:
    # 10 observations: 5 in (0, 1], 5 in (1, 2].
    buckets = {1.0: 5.0, 2.0: 10.0, float("inf"): 10.0}
    assert quantile(buckets, 0.5) == 1.0
    assert quantile(buckets, 0.75) == 1.5
    assert quantile({1.0: 0.0, float("inf"): 0.0}, 0.5) == 0.0
