"""Pure helpers of the benchmarks: percentiles, latency summaries, rates from progress series."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, linear between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be within 0..100, not {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_summary(seconds: Sequence[float]) -> dict[str, float | int | None]:
    """count, p50, p90, p99, max and mean of latencies given in seconds, reported in ms."""
    if not seconds:
        return {"count": 0, "p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}
    ms = [s * 1000 for s in seconds]
    return {
        "count": len(ms),
        "p50_ms": round(percentile(ms, 50), 1),
        "p90_ms": round(percentile(ms, 90), 1),
        "p99_ms": round(percentile(ms, 99), 1),
        "max_ms": round(max(ms), 1),
        "mean_ms": round(sum(ms) / len(ms), 1),
    }


def sustained_rate(
    series: Sequence[tuple[float, float]], low: float = 0.1, high: float = 0.9
) -> float | None:
    """Progress per second in the steady part of a run.

    ``series`` is (time, progress so far) samples, progress rising from 0 to its final value.
    The rate is the least-squares slope of the samples whose progress lies between ``low`` and
    ``high`` of the final value, so start-up (recovery, rebalance) and the tail do not count,
    and coarse steps (offsets committed once a second) average out. None: too few samples."""
    if not series:
        return None
    total = series[-1][1]
    if total <= 0:
        return None
    window = [(t, p) for t, p in series if low * total <= p <= high * total]
    if len(window) < 3 or max(p for _, p in window) - min(p for _, p in window) < (
        (high - low) * total / 2
    ):
        return None  # too few samples, or most of the progress happened in one step
    n = len(window)
    mean_t = sum(t for t, _ in window) / n
    mean_p = sum(p for _, p in window) / n
    var_t = sum((t - mean_t) ** 2 for t, _ in window)
    if var_t == 0:
        return None
    return sum((t - mean_t) * (p - mean_p) for t, p in window) / var_t


def first_reaching(series: Sequence[tuple[float, float]], value: float) -> float | None:
    """Time of the first sample whose progress is at least ``value``."""
    for t, p in series:
        if p >= value:
            return t
    return None
