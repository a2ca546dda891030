"""Per-view averages over images: at each view k of a protocol, the mean of P(c*) and the
fraction of images whose top-1 class is c* (the report's mean curves). They are means over
images at one view, not per-image metrics, so they are not columns of metrics.parquet; they
are accumulated in one streaming pass over the predictions (`update` per batch of sequences,
memory grows with the views, never with the rows).

    mean_p_ref[k] = mean over images i with a finite P_i,k of P_i,k(c*_i)
    top1_rate[k]  = (number of images i with top1_i,k = c*_i) / (number of images at view k)

>>> import numpy as np
>>> averages = ViewAverages()
>>> averages.update(np.array([0, 1, 0, 1]), np.array([0.9, 0.4, 0.7, np.nan]),
...                 np.array([3, 5, 3, 3]), np.array([3, 3, 3, 3]))
>>> averages.views
[0, 1]
>>> averages.mean_p_ref().tolist(), averages.top1_rate().tolist()
([0.8, 0.4], [1.0, 0.5])
"""

from __future__ import annotations

import numpy as np


class ViewAverages:
    """Accumulates, per view index, the sums behind `mean_p_ref` and `top1_rate`."""

    def __init__(self) -> None:
        self._p_sum = np.zeros(0)
        self._p_count = np.zeros(0)
        self._top1_hits = np.zeros(0)
        self._count = np.zeros(0)
        self._seen: set[int] = set()

    @property
    def views(self) -> list[int]:
        """The view indices seen, ascending: the entries of the arrays `mean_p_ref` and
        `top1_rate` return."""
        return sorted(self._seen)

    def update(
        self, view: np.ndarray, p_ref: np.ndarray, top1: np.ndarray, ref_class: np.ndarray
    ) -> None:
        """Add prediction rows (one entry per row): view index, P(c*), top-1 class and c*."""
        view = np.asarray(view, dtype=np.int64)
        p_ref = np.asarray(p_ref, dtype=np.float64)
        n = int(view.max()) + 1
        if len(self._count) < n:
            for name in ("_p_sum", "_p_count", "_top1_hits", "_count"):
                grown = np.zeros(n)
                grown[: len(getattr(self, name))] = getattr(self, name)
                setattr(self, name, grown)
        finite = np.isfinite(p_ref)
        np.add.at(self._p_sum, view[finite], p_ref[finite])
        np.add.at(self._p_count, view[finite], 1.0)
        np.add.at(self._top1_hits, view, (np.asarray(top1) == np.asarray(ref_class)).astype(float))
        np.add.at(self._count, view, 1.0)
        self._seen.update(np.unique(view).tolist())

    def mean_p_ref(self) -> np.ndarray:
        """Mean P(c*) over the images at each of `views` (finite values only; NaN when none)."""
        views = self.views
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(
                self._p_count[views] > 0, self._p_sum[views] / self._p_count[views], np.nan
            )

    def top1_rate(self) -> np.ndarray:
        """Fraction of the images whose top-1 is c*, at each of `views`."""
        views = self.views
        return self._top1_hits[views] / self._count[views]
