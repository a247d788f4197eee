"""Log-bucket latency histograms: buckets, percentiles within the bucket error, merging."""

from __future__ import annotations

import random

from shared.domain.latency import GROWTH, bucket_of, bucket_value, merge, percentile, summary


def test_bucket_holds_its_value_within_the_growth_factor() -> None:
    for ms in (1.0, 3.7, 42.0, 250.0, 9_999.0, 600_000.0):
        representative = bucket_value(bucket_of(ms))
        assert ms / GROWTH <= representative <= ms * GROWTH


def test_sub_millisecond_latencies_share_bucket_zero() -> None:
    assert bucket_of(0.0) == bucket_of(0.3) == 0


def test_percentiles_match_the_samples_within_ten_percent() -> None:
    rng = random.Random(4)
    samples = sorted(rng.lognormvariate(5, 1) for _ in range(5000))
    buckets: dict[int, int] = {}
    for ms in samples:
        merge(buckets, {bucket_of(ms): 1})
    for q in (0.5, 0.95, 0.99):
        exact = samples[int(q * len(samples)) - 1]
        found = percentile(buckets, q)
        assert found is not None and abs(found - exact) / exact < 0.12


def test_empty_histogram_has_no_percentiles() -> None:
    assert summary({}) == {"count": 0, "p50Ms": None, "p95Ms": None, "p99Ms": None}


def test_merging_adds_counts() -> None:
    into = {1: 2, 5: 1}
    merge(into, {5: 3, 9: 1})
    assert into == {1: 2, 5: 4, 9: 1}
