"""One rule for the percentiles every benchmark prints: the value at the nearest rank of q * (n - 1) in the sorted
sample (q = 0.5: the median; q = 1: the largest), NaN for an empty sample. Written once so that a p99 means the same
in every figure of BENCHMARKS.md."""

from collections.abc import Iterable


def percentile(values: Iterable[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[round(q * (len(ordered) - 1))] if ordered else float("nan")
