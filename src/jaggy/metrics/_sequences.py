"""Prediction rows of one protocol, grouped into per-image sequences (the metrics' input)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class PredictionSequences:
    """Rows of one protocol sorted by (image, view); image g owns rows starts[g]:ends[g].

    Shapes: N rows, G images. `top5_ids` [N, 5] int (class indices, best first), `top5_probs`
    [N, 5] float, `p_label` [N] (probability of the reference class c*), `p_prev_top1` [N]
    (probability at this view of the previous view's top-1 class; NaN at view 0), `label` [N]
    (-1 when unknown), `ref_class` [N] (c*: the label, else the top-1 class of view 0),
    `image_index` [N]. `pairing` is the protocol's: 'consecutive' (view k with view k+1) or
    'disjoint' (views come in independent pairs 2i, 2i+1).
    """

    image_index: np.ndarray
    top5_ids: np.ndarray
    top5_probs: np.ndarray
    p_label: np.ndarray
    p_prev_top1: np.ndarray
    label: np.ndarray
    ref_class: np.ndarray
    starts: np.ndarray
    pairing: str = "consecutive"
    finite: np.ndarray | None = None  # [N] bool: every logit of the view finite (None: all)

    def void_images(self) -> np.ndarray:
        """[G] bool: images with a view whose outputs were NaN or Inf; their metrics are
        undefined (a NaN logit would otherwise read as 'the answer never changed')."""
        if self.finite is None or self.finite.all():
            return np.zeros(self.n_images, dtype=bool)
        bad = np.flatnonzero(~self.finite)
        return np.isin(np.arange(self.n_images), np.searchsorted(self.starts, bad, "right") - 1)

    @property
    def ends(self) -> np.ndarray:
        return np.append(self.starts[1:], len(self.image_index)).astype(np.int64)

    @property
    def n_images(self) -> int:
        return len(self.starts)

    @property
    def n_views(self) -> np.ndarray:
        return self.ends - self.starts

    @property
    def top1(self) -> np.ndarray:
        return self.top5_ids[:, 0]

    def pair_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The second row of every pair inside an image (its first is the row before), and
        the image (group) index of each pair, as (rows, groups). Pairs are consecutive views,
        or views (2i, 2i+1) when `pairing` is 'disjoint'."""
        n = len(self.image_index)
        groups = np.searchsorted(self.starts, np.arange(n), side="right") - 1
        offset = np.arange(n) - self.starts[groups] if n else np.zeros(0, dtype=np.int64)
        second = offset % 2 == 1 if self.pairing == "disjoint" else offset > 0
        rows = np.nonzero(second)[0]
        return rows, groups[rows]

    @property
    def n_pairs(self) -> int:
        return len(self.pair_rows()[0])

    @classmethod
    def from_columns(cls, columns: dict) -> PredictionSequences:
        """Build from columns (numpy arrays or lists) of one protocol, sorting rows by
        (image_index, view)."""
        image_index = np.asarray(columns["image_index"], dtype=np.int64)
        view = np.asarray(columns["view"], dtype=np.int64)
        order = np.lexsort((view, image_index))
        image_index = image_index[order]
        starts = (
            np.nonzero(np.r_[True, image_index[1:] != image_index[:-1]])[0]
            if len(image_index)
            else np.zeros(0, dtype=np.int64)
        )

        def arr(name, dtype):
            return np.asarray(columns[name], dtype=dtype)[order]

        p_prev = columns["p_prev_top1"]
        if not (isinstance(p_prev, np.ndarray) and p_prev.dtype.kind == "f"):
            p_prev = [np.nan if v is None else v for v in p_prev]  # lists with None
        p_prev = np.asarray(p_prev, dtype=np.float64)[order]
        return cls(
            image_index=image_index,
            top5_ids=_stack(columns["top5_ids"], np.int64)[order],
            top5_probs=_stack(columns["top5_probs"], np.float64)[order],
            p_label=arr("p_label", np.float64),
            p_prev_top1=p_prev,
            label=arr("label", np.int64),
            ref_class=arr("ref_class", np.int64),
            starts=starts.astype(np.int64),
            finite=arr("finite", bool) if "finite" in columns else None,
        )


def _stack(values, dtype) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.ndim == 2:
        return values.astype(dtype)
    if len(values) == 0:
        return np.zeros((0, 5), dtype=dtype)
    return np.asarray([np.asarray(v, dtype=dtype) for v in values], dtype=dtype)
