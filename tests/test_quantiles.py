"""The one percentile rule of the benchmarks (loadtest/quantiles.py): the nearest rank of q * (n - 1)."""

import math

from loadtest.quantiles import percentile


def test_a_percentile_is_the_nearest_rank_of_the_sorted_sample() -> None:
    sample = [float(v) for v in (7, 1, 9, 3, 5)]  # sorted: 1 3 5 7 9
    assert (percentile(sample, 0.0), percentile(sample, 0.5), percentile(sample, 1.0)) == (1.0, 5.0, 9.0)
    assert percentile(sample, 0.8) == 7.0  # rank 0.8 * 4 = 3.2 -> 3
    hundred = [float(v) for v in range(100, 0, -1)]
    assert percentile(hundred, 0.99) == 99.0  # rank 98.01 -> 98: not the largest
    assert percentile(iter(hundred), 0.5) == 51.0  # any iterable, read once; rank 49.5 rounds to even -> 50
    assert math.isnan(percentile([], 0.99))
