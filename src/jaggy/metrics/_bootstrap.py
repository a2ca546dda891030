"""Mean over images with a percentile bootstrap 95% confidence interval."""

from __future__ import annotations

import numpy as np


def bootstrap_mean_ci(
    values: np.ndarray, *, n_resamples: int = 1000, seed: int | list[int] = 0, level: float = 0.95
) -> tuple[float | None, list[float | None]]:
    """Mean of the finite values and its percentile bootstrap CI (resampling images).

    Returns (None, [None, None]) when no value is finite. With one value, the CI is [v, v].
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    n = len(values)
    if n == 0:
        return None, [None, None]
    mean = float(values.mean())
    if n == 1:
        return mean, [mean, mean]
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    block = max(1, 4_000_000 // n)  # bound memory of the index matrix
    for start in range(0, n_resamples, block):
        stop = min(n_resamples, start + block)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = values[idx].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return mean, [float(lo), float(hi)]
