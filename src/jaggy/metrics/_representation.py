"""Representation-change metrics (`--measure features`): how far 1-px changes of the input move
a model's pooled features, for any backbone, with or without a classifier head.

Per pair of views (a, b) (the protocol's pairs: consecutive views, or a paired protocol's own
pairs) the predictions hold `feat_cos` = 1 - <f_a, f_b> / (|f_a| |f_b|) and
`feat_rel_l2` = |f_b - f_a| / |f_a|. A pair's representation *changes* when its cosine
distance exceeds the threshold τ (`--feature-threshold`, default DEFAULT_FEATURE_THRESHOLD).

On the `neighbours` protocol (a centre crop and its 8 one-pixel neighbours, each paired with
the centre: the realistic shifts of Shifman & Weiss, "Lost in Translation", ECCV 2024) these
are the paper's two numbers with the classifier's answer replaced by the representation:
consistency, E[f(I) == f(T(I, Δ))], becomes 1 - `representation_change_rate`; adversarial
robustness, [f(I) == f(T(I, Δ)) for every Δ of the set], becomes 1 - `fooling_rate`. With the
classifier's answer itself (f = the top-1 class), 1 - consistency is `p_top1_change` and
1 - adversarial robustness is `top1_fooling_rate`, defined here beside its representation
twin.

About τ: the paper reports that a 1-px shift makes a "significant change in the predicted
image representation" for about 40% of images (open-CLIP, DINOv2); the threshold behind
"significant" is not given in the text available to this project (its abstract and summaries
define consistency through the classifier's output), so jaggy uses a cosine-distance
threshold of its own, recorded in summary.json (`representation`) and manifest.json.

Example (one image: a centre view and two neighbours, as disjoint pairs (0, 1), (2, 3)):

>>> import numpy as np
>>> from ..results import PredictionSequences
>>> seq = PredictionSequences.from_columns({
...     "image_index": [0] * 4, "view": [0, 1, 2, 3], "label": [-1] * 4,
...     "ref_class": [-1] * 4, "p_ref": [np.nan] * 4, "top5_ids": [[-1] * 5] * 4,
...     "top5_probs": [[np.nan] * 5] * 4, "p_prev_top1": [np.nan] * 4,
...     "feat_cos": [np.nan, 0.001, np.nan, 0.05], "feat_rel_l2": [np.nan, 0.04, np.nan, 0.3]})
>>> seq.pairing = "disjoint"
>>> representation_change_rate(seq, feature_threshold=0.01).tolist()  # 1 of 2 pairs
[0.5]
>>> fooling_rate(seq, feature_threshold=0.01).tolist()  # some neighbour changes it
[1.0]
"""

from __future__ import annotations

import math

import numpy as np

from ..results import PredictionSequences
from ._functional import _per_image_mean, register_metric

DEFAULT_FEATURE_THRESHOLD = 0.01
"""Default τ: a pair's representation changes when its cosine distance exceeds 0.01 (the
angle between the two feature vectors exceeds arccos(0.99), about 8.1 degrees). A round value
that depends on no model and no data set (cosine distance ignores the features' scale); on
efficientnet_lite0's penultimate features it lies near the median distance of a 1-px
neighbour pair on the sample photos (0.011), so its rates are informative rather than stuck at
0 or 1 for an ImageNet CNN. Compare models at the same τ."""


def check_feature_threshold(value) -> float:
    """τ as a float; ValueError unless it is a number in (0, 2) (the range of a cosine
    distance)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"the feature threshold must be a number (got {value!r})")
    if not (math.isfinite(value) and 0 < value < 2):
        raise ValueError(
            f"the feature threshold is a cosine distance, within (0, 2) (got {value!r})"
        )
    return float(value)


def _pair_values(seq: PredictionSequences, name: str) -> tuple[np.ndarray, np.ndarray]:
    """One column's values at every pair's second row, and each pair's image index."""
    rows, groups = seq.pair_rows()
    column = getattr(seq, name)
    if column is None:
        return np.full(len(rows), np.nan), groups
    return column[rows].astype(np.float64), groups


def _changed(seq: PredictionSequences, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Per pair: 1.0 when the cosine distance exceeds τ, 0.0 when not, NaN when undefined."""
    distance, groups = _pair_values(seq, "feat_cos")
    with np.errstate(invalid="ignore"):
        changed = np.where(np.isnan(distance), np.nan, (distance > threshold).astype(float))
    return changed, groups


@register_metric(
    "feature_cos_distance",
    higher_is_better=False,
    needs="features",
    label="cosine distance of features",
    short="cos dist",
    digits=4,
)
def feature_cos_distance(seq: PredictionSequences, **context) -> np.ndarray:
    """Mean cosine distance 1 - cos(f_a, f_b) of the pooled features over the image's pairs.

    Per image: (1 / P) * sum over its P pairs (a, b) of `feat_cos`; NaN without features.
    """
    distance, groups = _pair_values(seq, "feat_cos")
    return _per_image_mean(distance, groups, seq.n_images)


@register_metric(
    "feature_rel_l2",
    higher_is_better=False,
    needs="features",
    label="relative L2 change of features",
    short="rel L2",
    digits=4,
)
def feature_rel_l2(seq: PredictionSequences, **context) -> np.ndarray:
    """Mean relative L2 change |f_b - f_a| / |f_a| of the pooled features over the pairs.

    Per image: (1 / P) * sum over its P pairs (a, b) of `feat_rel_l2`; NaN without features.
    """
    change, groups = _pair_values(seq, "feat_rel_l2")
    return _per_image_mean(change, groups, seq.n_images)


@register_metric(
    "representation_change_rate",
    higher_is_better=False,
    needs="features",
    label="representation change rate",
    short="repr chg",
)
def representation_change_rate(
    seq: PredictionSequences, *, feature_threshold: float = DEFAULT_FEATURE_THRESHOLD, **context
) -> np.ndarray:
    """Fraction of the image's pairs whose cosine distance of features exceeds τ.

    Per image: (1 / P) * sum over pairs of [feat_cos > τ] (τ = --feature-threshold); on
    `neighbours`, the fraction of the 8 one-pixel shifts that change the representation.
    """
    changed, groups = _changed(seq, feature_threshold)
    return _per_image_mean(changed, groups, seq.n_images)


@register_metric(
    "fooling_rate",
    higher_is_better=False,
    needs="features",
    label="fooling rate (representation)",
    short="fooled",
)
def fooling_rate(
    seq: PredictionSequences, *, feature_threshold: float = DEFAULT_FEATURE_THRESHOLD, **context
) -> np.ndarray:
    """1 when some pair of the image changes its representation beyond τ, else 0.

    Its mean over images is the adversarial fooling rate over the protocol's set of shifts
    (on `neighbours`: an image is fooled if ANY of its 8 one-pixel neighbours moves the
    features by a cosine distance above τ); NaN when a pair is undefined.
    """
    changed, groups = _changed(seq, feature_threshold)
    n = seq.n_images
    pairs = np.bincount(groups, minlength=n)
    undefined = np.bincount(groups, weights=np.isnan(changed), minlength=n) > 0
    hits = np.bincount(groups, weights=np.nan_to_num(changed), minlength=n) > 0
    return np.where((pairs > 0) & ~undefined, hits.astype(np.float64), np.nan)


@register_metric(
    "top1_fooling_rate",
    higher_is_better=False,
    label="fooling rate (top-1)",
    short="fooled top-1",
)
def top1_fooling_rate(seq: PredictionSequences, **context) -> np.ndarray:
    """1 when some pair of the image has two different top-1 classes, else 0.

    Its mean over images is the fooling rate of the class answer over the protocol's set of
    shifts (on `neighbours`: 1 - Shifman & Weiss's adversarial robustness, an image fooled
    when any of its 8 one-pixel neighbours changes the top-1 class); NaN without pairs.
    """
    rows, groups = seq.pair_rows()
    n = seq.n_images
    changed = seq.top1[rows] != seq.top1[rows - 1]
    pairs = np.bincount(groups, minlength=n)
    hits = np.bincount(groups, weights=changed, minlength=n) > 0
    return np.where(pairs > 0, hits.astype(np.float64), np.nan)
