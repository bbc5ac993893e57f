"""Exact nearest-rank percentiles.

For ``n`` values sorted ascending, the p-th percentile is the value at the
1-based rank ``ceil(p / 100 * n)``: the smallest value such that at least p %
of the values are less than or equal to it. It is always one of the measured
values, never an interpolation, so a p99 over 10 samples is the maximum.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from smtptop.metrics.stats import Percentiles


def nearest_rank(ordered: Sequence[float], percent: int) -> float:
    """Return the ``percent``-th nearest-rank percentile of ``ordered`` (sorted ascending, not empty)."""
    if not ordered:
        raise ValueError("nearest_rank needs at least one value")
    if not 0 < percent <= 100:
        raise ValueError(f"percent must be in 1..100, got {percent}")
    # Integer ceiling division, so that 95 % of 20 values is exactly rank 19.
    rank = -(-percent * len(ordered) // 100)
    return ordered[rank - 1]


def summarize(values: Iterable[float]) -> Percentiles | None:
    """Sort ``values`` and return their count, p50, p95 and p99; None when there are none."""
    ordered = sorted(values)
    if not ordered:
        return None
    return Percentiles(
        count=len(ordered),
        p50=nearest_rank(ordered, 50),
        p95=nearest_rank(ordered, 95),
        p99=nearest_rank(ordered, 99),
    )
