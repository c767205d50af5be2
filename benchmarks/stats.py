"""The one way every benchmark summarises timings."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def percentile(samples: Sequence[float], pct: int) -> float:
    """The `pct`-th percentile (1..99) of `samples`, interpolated between the nearest
    ranks (numpy's default, `statistics.quantiles(method="inclusive")`): with 100 samples
    p99 lies between the two slowest runs instead of being the slowest one."""
    if not 1 <= pct <= 99:
        raise ValueError(f"percentile must be within 1..99, not {pct}")
    if len(samples) < 2:
        raise ValueError("a percentile needs at least two samples")
    return statistics.quantiles(samples, n=100, method="inclusive")[pct - 1]


def p50_p99(samples: Sequence[float]) -> tuple[float, float]:
    """Median and 99th percentile of `samples`."""
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[98]
