"""Metrics of worst-case sets (`--worst-case KIND`, key `worst@KIND`; `protocols/worst.py`).

A view *holds* when its top-1 class is c* (the label, else the top-1 of view 0, the
untransformed input) and every output is finite. View 0 of a set is the untransformed input;
the other views come in order of growing transformation. An early-exit search keeps the
views up to the end of the batch holding the first failing view, so every metric here reads
only what is the same in an exhaustive run: whether a failing view exists, and the first one
(`randomK` sets always run every view, so `worst_of_k_accuracy` may read them all).
The metrics of view sequences (pair metrics, accuracy over views) are NaN on these sets.

Example (one unlabelled image; the answer changes at the third view, a 2 px shift):

>>> import numpy as np
>>> seq = PredictionSequences.from_columns({
...     "image_index": [0, 0, 0], "view": [0, 1, 2], "label": [-1] * 3,
...     "ref_class": [7] * 3, "p_ref": [0.6, 0.5, 0.4], "dx": [0, 1, 2], "dy": [0, 0, 0],
...     "top5_ids": [[7, 3, 1, 2, 4]] * 2 + [[3, 7, 1, 2, 4]],
...     "top5_probs": [[0.6, 0.2, 0.1, 0.05, 0.05]] * 3, "p_prev_top1": [None, 0.5, 0.4]})
>>> robust_accuracy(seq, protocol="worst@circular").tolist()
[0.0]
>>> failing_shift(seq, protocol="worst@circular").tolist()
[2.0]
"""

from __future__ import annotations

import re

import numpy as np

from ..results import PredictionSequences
from ._functional import register_metric

_RANDOM_KIND = re.compile(r"random[1-9][0-9]*$")


def is_worst_case(seq: PredictionSequences, protocol: str = "") -> bool:
    """True when the rows are a worst-case set (by the protocol registry)."""
    from ..errors import ArgumentError
    from ..protocols._registry import protocol_class

    name = seq.protocol_name or (protocol or seq.protocol).split("@", 1)[0]
    try:
        return bool(name) and bool(protocol_class(name).worst_case)
    except ArgumentError:
        return False


def view_holds(
    top1: np.ndarray, ref_class: np.ndarray, finite: np.ndarray | None = None
) -> np.ndarray:
    """[N] bool: the view's top-1 is c* and its outputs are finite (the engine's early exit
    stops at the first view where this is False)."""
    holds = np.asarray(top1) == np.asarray(ref_class)
    return holds if finite is None else holds & np.asarray(finite, dtype=bool)


def first_failures(seq: PredictionSequences) -> np.ndarray:
    """[G] int: the row of each image's first failing view, -1 when every view holds."""
    fails = ~view_holds(seq.top1, seq.ref_class, seq.finite)
    out = np.full(seq.n_images, -1, dtype=np.int64)
    rows = np.flatnonzero(fails)
    if len(rows):
        groups = np.searchsorted(seq.starts, rows, side="right") - 1
        first = np.unique(groups, return_index=True)
        out[first[0]] = rows[first[1]]
    return out


def _at_first_failure(seq: PredictionSequences, values: np.ndarray | None) -> np.ndarray:
    failing = first_failures(seq)
    out = np.full(seq.n_images, np.nan)
    if values is None:
        return out
    found = failing >= 0
    out[found] = values[failing[found]]
    return out


@register_metric(
    "robust_accuracy",
    higher_is_better=True,
    worst_case=True,
    label="robust accuracy",
    short="robust",
)
def robust_accuracy(seq: PredictionSequences, *, protocol: str = "", **context) -> np.ndarray:
    """1 when the top-1 is c* (right, when labelled) at every view of a worst-case set, the
    untransformed input included, else 0; NaN for other protocols.

    With labels this is AFC's robust score (Michaeli et al., CVPR 2023) on `circular`, `crop`
    and `fourier`. On `grid` and `randomK` it is at most Engstrom et al.'s (ICML 2019) grid
    and worst-of-K accuracies, which score one chosen view (see `worst_of_k_accuracy`);
    without labels, "c* is kept", c* the top-1 of the untransformed input.
    """
    if not is_worst_case(seq, protocol):
        return np.full(seq.n_images, np.nan)
    return (first_failures(seq) < 0).astype(np.float64)


def is_random_set(seq: PredictionSequences, protocol: str = "") -> bool:
    """True when the rows are a `randomK` worst-case set (always computed at every view)."""
    kind = (protocol or seq.protocol or "").split("@", 1)[-1]
    return is_worst_case(seq, protocol) and _RANDOM_KIND.match(kind) is not None


@register_metric(
    "worst_of_k_accuracy",
    higher_is_better=True,
    worst_case=True,
    label="worst-of-K accuracy",
    short="worst-of-K",
)
def worst_of_k_accuracy(seq: PredictionSequences, *, protocol: str = "", **context) -> np.ndarray:
    """`randomK` sets only: 1 when the top-1 is c* (the label, when labelled) at the view of
    highest loss, else 0; NaN for other protocols.

    The view of highest loss is the one of lowest `p_ref` (cross-entropy -log p_ref), the
    untransformed input included, ties to the earliest view; a view with NaN/Inf outputs
    counts as the highest loss (and is not right). With labels this is Engstrom et al.'s
    (ICML 2019) worst-of-K accuracy (their `eval.sh` TRIES=K USE_BEST=1): keep the clean
    input and replace it by each random draw of higher loss. It is at least
    `robust_accuracy` (right at every view).
    """
    out = np.full(seq.n_images, np.nan)
    if not is_random_set(seq, protocol):
        return out
    finite = np.ones(len(seq.view), bool) if seq.finite is None else seq.finite.astype(bool)
    loss_rank = np.where(finite & np.isfinite(seq.p_ref), seq.p_ref, -np.inf)
    holds = view_holds(seq.top1, seq.ref_class, seq.finite)
    for g, (start, end) in enumerate(zip(seq.starts, seq.ends, strict=True)):
        if end > start:
            out[g] = float(holds[start + int(np.argmin(loss_rank[start:end]))])
    return out


@register_metric(
    "clean_accuracy",
    higher_is_better=True,
    needs_labels=True,
    worst_case=True,
    label="clean accuracy",
    short="clean acc",
)
def clean_accuracy(seq: PredictionSequences, *, protocol: str = "", **context) -> np.ndarray:
    """1 when the untransformed input (view 0 of a worst-case set) is right, else 0; NaN
    without a label and for other protocols."""
    if not is_worst_case(seq, protocol) or not seq.n_images:
        return np.full(seq.n_images, np.nan)
    first = seq.starts
    right = (seq.top1[first] == seq.label[first]).astype(np.float64)
    return np.where((seq.label[first] >= 0) & (seq.view[first] == 0), right, np.nan)


@register_metric(
    "failing_shift",
    higher_is_better=True,
    worst_case=True,
    label="first failing |shift| (px)",
    short="fail |d|",
    digits=2,
)
def failing_shift(seq: PredictionSequences, *, protocol: str = "", **context) -> np.ndarray:
    """|(dx, dy)| in px of the first failing view of a worst-case set in the set's order: on
    the sets of shifts the smallest shift that changes the answer (0 when the untransformed
    input already fails); on `grid` and `randomK` the shift of the first failing view in
    their combined |shift| and |angle| order. NaN when no view fails (the image is robust)
    and for other protocols."""
    if not is_worst_case(seq, protocol) or seq.dx is None or seq.dy is None:
        return np.full(seq.n_images, np.nan)
    return _at_first_failure(seq, np.hypot(seq.dx, seq.dy))


@register_metric(
    "failing_angle",
    higher_is_better=True,
    worst_case=True,
    label="first failing |angle| (deg)",
    short="fail |angle|",
    digits=1,
)
def failing_angle(seq: PredictionSequences, *, protocol: str = "", **context) -> np.ndarray:
    """|angle| in degrees of the first failing view of a worst-case set in the set's order
    (0 for sets of shifts); NaN when no view fails and for other protocols."""
    if not is_worst_case(seq, protocol):
        return np.full(seq.n_images, np.nan)
    angle = seq.angle if seq.angle is not None else np.zeros(len(seq.view))
    return _at_first_failure(seq, np.abs(angle))


def robust_within(failing: np.ndarray, robust: np.ndarray, limits: np.ndarray) -> np.ndarray:
    """The curve of the first failing transformation: for each limit r, the fraction of
    images that keep their answer at every view of the set whose transformation is at most r,
    i.e. robust images and those whose first failure (`failing_shift` or `failing_angle`) is
    beyond r. Images with `robust` NaN (undefined) are left out; NaN when none is left.

    Args:
        failing: [G] the per-image first failing |shift| (px) or |angle| (deg), NaN if robust.
        robust: [G] the per-image `robust_accuracy` (1, 0 or NaN).
        limits: [L] increasing limits r, in the units of `failing`.

    Example:
        >>> robust_within(np.array([np.nan, 1.0, 3.0]), np.array([1.0, 0, 0]), np.array([0, 2, 4]))
        array([1.        , 0.66666667, 0.33333333])
    """
    failing = np.asarray(failing, dtype=np.float64)
    robust = np.asarray(robust, dtype=np.float64)
    known = ~np.isnan(robust)
    if not known.any():
        return np.full(len(limits), np.nan)
    first = np.where(robust[known] == 1, np.inf, failing[known])
    return (first[None, :] > np.asarray(limits, dtype=np.float64)[:, None]).mean(axis=1)
