"""Latency histograms with log-spaced buckets, mergeable by addition.

Each gateway instance counts its upstream latencies into buckets and adds them to the store once in a
while (one `ADD` per provider per flush); percentiles come from the summed buckets, so instances never
need to share raw samples. Bucket i holds latencies in [GROWTH^(i-1), GROWTH^i) ms (bucket 0: under
1 ms); with GROWTH 1.2 a percentile is off by at most 10 % of its value, enough to tell 200 ms from 2 s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

GROWTH = 1.2
MAX_BUCKET = 80  # 1.2^80 ms ≈ 2.1 million s: every latency the gateway can see


def bucket_of(ms: float) -> int:
    if ms < 1.0:
        return 0
    return min(int(math.log(ms, GROWTH)) + 1, MAX_BUCKET)


def bucket_value(index: int) -> float:
    """A representative latency (ms) of the bucket: its geometric middle."""
    if index <= 0:
        return 0.5
    low, high = GROWTH ** (index - 1), GROWTH**index
    return math.sqrt(low * high)


def percentile(buckets: Mapping[int, int], q: float) -> float | None:
    """The q-quantile (0 < q ≤ 1) in ms, or None without samples."""
    total = sum(buckets.values())
    if total <= 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for index in sorted(buckets):
        seen += buckets[index]
        if seen >= rank:
            return round(bucket_value(index), 1)
    return round(bucket_value(max(buckets)), 1)


def summary(buckets: Mapping[int, int]) -> dict[str, float | int | None]:
    return {
        "count": sum(buckets.values()),
        "p50Ms": percentile(buckets, 0.50),
        "p95Ms": percentile(buckets, 0.95),
        "p99Ms": percentile(buckets, 0.99),
    }


def merge(into: dict[int, int], more: Mapping[int, int]) -> None:
    for index, count in more.items():
        into[index] = into.get(index, 0) + count
