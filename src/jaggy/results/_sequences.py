"""Prediction rows of one protocol key, grouped into per-image sequences (the metrics' input)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Columns every sequence has (the metrics read these); the others are read when asked for.
SEQUENCE_COLUMNS = (
    "image_index",
    "view",
    "label",
    "ref_class",
    "top5_ids",
    "top5_probs",
    "p_ref",
    "p_prev_top1",
    "finite",
    "feat_cos",
    "feat_rel_l2",
)
OPTIONAL_COLUMNS = ("image_id", "protocol_name", "dx", "dy", "size", "angle")


@dataclass
class PredictionSequences:
    """Rows of one protocol key sorted by (image, view); image g owns rows starts[g]:ends[g].

    Shapes: N rows, G images. `top5_ids` [N, 5] int (class indices, best first), `top5_probs`
    [N, 5] float, `p_ref` [N] (probability of the reference class c*), `p_prev_top1` [N]
    (probability at this view of the previous view's top-1 class; NaN at view 0), `label` [N]
    (-1 when unknown), `ref_class` [N] (c*: the label, else the top-1 class of view 0),
    `image_index` [N], `view` [N]. Read only when asked for (else None): `image_id` [N],
    `dx`, `dy` [N] (the view's shift in px of the model input, (dx, dy) order), `size` [N],
    `angle` [N] (the view's rotation in degrees).
    `protocol` is the key (e.g. 'black@140'), `protocol_name` the protocol (e.g. 'black').
    `pairing` is the protocol's: 'consecutive' (view k with view k+1) or 'disjoint' (views
    come in independent pairs 2i, 2i+1). `finite` [N] bool: every logit of the view finite
    (None: all were). `feat_cos`, `feat_rel_l2` [N] float: the cosine distance and relative
    L2 change of the view's pooled features against the view it is paired with (NaN at the
    first view of a pair or sequence, and everywhere when the run measured no features; None:
    not read). A run that measured no logits holds -1 in `top5_ids` and `ref_class`
    (`has_logits` is then False).
    """

    image_index: np.ndarray
    view: np.ndarray
    top5_ids: np.ndarray
    top5_probs: np.ndarray
    p_ref: np.ndarray
    p_prev_top1: np.ndarray
    label: np.ndarray
    ref_class: np.ndarray
    starts: np.ndarray
    protocol: str = ""
    protocol_name: str = ""
    image_id: np.ndarray | None = None
    dx: np.ndarray | None = None
    dy: np.ndarray | None = None
    size: np.ndarray | None = None
    angle: np.ndarray | None = None
    pairing: str = "consecutive"
    finite: np.ndarray | None = None
    feat_cos: np.ndarray | None = None
    feat_rel_l2: np.ndarray | None = None

    @property
    def has_logits(self) -> bool:
        """False when the run measured no class outputs (`--measure features`)."""
        return bool(len(self.top5_ids)) and bool((self.top5_ids[:, 0] >= 0).any())

    @property
    def has_features(self) -> bool:
        """True when some view carries a representation change (the run measured features)."""
        return self.feat_cos is not None and bool(np.isfinite(self.feat_cos).any())

    def void_images(self) -> np.ndarray:
        """[G] bool: images with a view whose outputs were NaN or Inf; their metrics are
        undefined (a NaN logit would otherwise read as 'the answer never changed')."""
        if self.finite is None or self.finite.all():
            return np.zeros(self.n_images, dtype=bool)
        bad = np.flatnonzero(~self.finite)
        return np.isin(np.arange(self.n_images), np.searchsorted(self.starts, bad, "right") - 1)

    def nonfinite_per_image(self) -> np.ndarray:
        """[G] int: views of each image with a NaN or Inf output."""
        if self.finite is None or not self.n_images:
            return np.zeros(self.n_images, dtype=np.int64)
        return np.add.reduceat((~self.finite).astype(np.int64), self.starts)

    @property
    def ends(self) -> np.ndarray:
        return np.append(self.starts[1:], len(self.image_index)).astype(np.int64)

    @property
    def n_images(self) -> int:
        return len(self.starts)

    @property
    def n_views(self) -> np.ndarray:
        """Views of each image [G]."""
        return self.ends - self.starts

    @property
    def n_pairs(self) -> int:
        """Pairs of views, all images together (see `pair_rows`)."""
        return len(self.pair_rows()[0])

    def pairs_per_image(self) -> np.ndarray:
        """[G] int: pairs of views of each image (see `pair_rows`)."""
        return np.bincount(self.pair_rows()[1], minlength=self.n_images).astype(np.int64)

    @property
    def top1(self) -> np.ndarray:
        return self.top5_ids[:, 0]

    def per_image(self, values: np.ndarray) -> np.ndarray:
        """The value of a per-row column at each image's first row [G]."""
        return values[self.starts]

    def image(self, g: int) -> PredictionSequences:
        """The sequence of image g alone."""
        return self.take(np.arange(self.starts[g], self.ends[g]))

    def take(self, rows: np.ndarray) -> PredictionSequences:
        """The sequences of the given rows (whole images, in order)."""
        image_index = self.image_index[rows]
        starts = np.nonzero(np.r_[True, image_index[1:] != image_index[:-1]])[0]
        if not len(rows):
            starts = np.zeros(0, dtype=np.int64)

        def pick(values):
            return None if values is None else values[rows]

        return PredictionSequences(
            image_index=image_index,
            view=self.view[rows],
            top5_ids=self.top5_ids[rows],
            top5_probs=self.top5_probs[rows],
            p_ref=self.p_ref[rows],
            p_prev_top1=self.p_prev_top1[rows],
            label=self.label[rows],
            ref_class=self.ref_class[rows],
            starts=starts.astype(np.int64),
            protocol=self.protocol,
            protocol_name=self.protocol_name,
            image_id=pick(self.image_id),
            dx=pick(self.dx),
            dy=pick(self.dy),
            size=pick(self.size),
            angle=pick(self.angle),
            pairing=self.pairing,
            finite=pick(self.finite),
            feat_cos=pick(self.feat_cos),
            feat_rel_l2=pick(self.feat_rel_l2),
        )

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

    @classmethod
    def from_columns(
        cls, columns: dict, *, protocol: str = "", protocol_name: str = ""
    ) -> PredictionSequences:
        """Build from columns (numpy arrays or lists) of one protocol key, sorting rows by
        (image_index, view). The columns of OPTIONAL_COLUMNS may be missing."""
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

        def optional(name, dtype):
            return arr(name, dtype) if name in columns else None

        p_prev = columns["p_prev_top1"]
        if not (isinstance(p_prev, np.ndarray) and p_prev.dtype.kind == "f"):
            p_prev = [np.nan if v is None else v for v in p_prev]  # lists with None
        p_prev = np.asarray(p_prev, dtype=np.float64)[order]
        return cls(
            image_index=image_index,
            view=view[order],
            top5_ids=_stack(columns["top5_ids"], np.int64)[order],
            top5_probs=_stack(columns["top5_probs"], np.float64)[order],
            p_ref=arr("p_ref", np.float64),
            p_prev_top1=p_prev,
            label=arr("label", np.int64),
            ref_class=arr("ref_class", np.int64),
            starts=starts.astype(np.int64),
            protocol=protocol,
            protocol_name=protocol_name,
            image_id=optional("image_id", object),
            dx=optional("dx", np.float64),
            dy=optional("dy", np.float64),
            size=optional("size", np.int64),
            angle=optional("angle", np.float64),
            finite=optional("finite", bool),
            feat_cos=optional("feat_cos", np.float64),
            feat_rel_l2=optional("feat_rel_l2", np.float64),
        )


def _stack(values, dtype) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.ndim == 2:
        return values.astype(dtype)
    if len(values) == 0:
        return np.zeros((0, 5), dtype=dtype)
    return np.asarray([np.asarray(v, dtype=dtype) for v in values], dtype=dtype)
