"""Per-view averages against a slow, obvious reference (a pandas group-by), fed in pieces."""

import numpy as np
import pandas as pd
import pytest

from jaggy.metrics._by_view import ViewAverages


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_view_averages_equal_a_group_by_over_all_rows(seed):
    rng = np.random.default_rng(seed)
    n = 400
    rows = pd.DataFrame(
        {
            "view": rng.integers(0, 9, n),
            "p_ref": np.where(rng.random(n) < 0.1, np.nan, rng.random(n)),
            "top1": rng.integers(0, 4, n),
            "ref_class": rng.integers(0, 4, n),
        }
    )
    averages = ViewAverages()
    for start in range(0, n, 37):  # streamed in uneven batches
        part = rows.iloc[start : start + 37]
        averages.update(*(part[c].to_numpy() for c in ("view", "p_ref", "top1", "ref_class")))
    grouped = rows.groupby("view")
    expected_p = grouped["p_ref"].mean()  # pandas skips NaN
    expected_top1 = (rows["top1"] == rows["ref_class"]).groupby(rows["view"]).mean()
    assert averages.views == sorted(expected_p.index.tolist())
    np.testing.assert_allclose(averages.mean_p_ref(), expected_p.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(averages.top1_rate(), expected_top1.to_numpy(), rtol=1e-12)


def test_a_view_without_a_finite_probability_is_nan():
    averages = ViewAverages()
    averages.update(np.array([0, 1]), np.array([0.5, np.nan]), np.array([1, 1]), np.array([1, 2]))
    assert averages.mean_p_ref()[0] == 0.5 and np.isnan(averages.mean_p_ref()[1])
    assert averages.top1_rate().tolist() == [1.0, 0.0]
