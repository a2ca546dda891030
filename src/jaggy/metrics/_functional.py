"""Per-image metrics, as pure functions of PredictionSequences; a registry by name.

Conventions: every metric takes a PredictionSequences of G images (rows sorted by image, then
view) and keyword context (`seed`, `k`, `protocol`, `difficulty`, `pmk`; each metric uses what
it needs), and
returns a float array [G], one value per image, NaN where undefined (e.g. accuracy without a
label, pair metrics for an image with one view). A *pair* is two consecutive views (k, k+1) of
one image, one step apart along the protocol's path.

Example (one image, three views; classes 7 and 3 swap places at the last view):

>>> import numpy as np
>>> seq = PredictionSequences.from_columns({
...     "image_index": [0, 0, 0], "view": [0, 1, 2], "label": [-1] * 3,
...     "ref_class": [7] * 3, "p_ref": [0.6, 0.5, 0.4],
...     "top5_ids": [[7, 3, 1, 2, 4], [7, 3, 1, 2, 4], [3, 7, 1, 2, 4]],
...     "top5_probs": [[0.6, 0.2, 0.1, 0.05, 0.05]] * 2 + [[0.45, 0.4, 0.1, 0.03, 0.02]],
...     "p_prev_top1": [None, 0.5, 0.4]})
>>> p_top1_change(seq).tolist()       # pairs (0,1) same, (1,2) differ
[0.5]
>>> mac(seq).round(3).tolist()        # (|0.6 - 0.5| + |0.6 - 0.4|) / 2
[0.15]
>>> top5_distance(seq).tolist()       # second pair: positions 0 and 1 swap: |0-1| + |1-0|
[1.0]
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..results import PredictionSequences


@dataclass(frozen=True)
class MetricInfo:
    """A registered metric: its per-image function, the direction in which it is better (used
    by `--fail-under`), whether it needs labels, its one-line definition, and how it is shown:
    `label` (report and figures), `short` (console table columns), `digits` after the point.
    `worst_case`: defined on worst-case sets (`worst@KIND`), whose early-exit searches keep
    only the views up to the first failure; the other metrics are NaN there.
    `needs`: what it is computed from, 'logits' (class outputs; NaN for a run that measured
    none) or 'features' (the representation change, `--measure features`)."""

    name: str
    fn: Callable[..., np.ndarray]
    higher_is_better: bool
    needs_labels: bool
    description: str
    label: str = ""
    short: str = ""
    digits: int = 3
    worst_case: bool = False
    needs: str = "logits"


_METRICS: dict[str, MetricInfo] = {}


def register_metric(
    name: str,
    *,
    higher_is_better: bool,
    needs_labels: bool = False,
    label: str | None = None,
    short: str | None = None,
    digits: int = 3,
    worst_case: bool = False,
    needs: str = "logits",
):
    """Decorator: register `fn(seq, **context) -> [G] array` as metric `name`. `label` and
    `short` (default: the name with spaces) are its display names, `digits` its precision;
    `worst_case`: the metric is defined on worst-case sets (see MetricInfo); `needs` what it
    reads ('logits' or 'features')."""
    if needs not in ("logits", "features"):
        raise ValueError(f"needs must be 'logits' or 'features' (got {needs!r})")

    def wrap(fn):
        doc = (fn.__doc__ or "").strip().splitlines()
        shown = label or name.replace("_", " ")
        _METRICS[name] = MetricInfo(
            name,
            fn,
            higher_is_better,
            needs_labels,
            doc[0] if doc else "",
            shown,
            short or shown,
            digits,
            worst_case,
            needs,
        )
        return fn

    return wrap


def list_metrics() -> list[str]:
    """Names of every registered metric, in registration order."""
    return list(_METRICS)


def metric_info(name: str) -> MetricInfo:
    """The MetricInfo of a registered metric (KeyError if unknown)."""
    return _METRICS[name]


def _per_image_mean(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    counts = np.bincount(groups, minlength=n_groups).astype(np.float64)
    sums = np.bincount(groups, weights=values.astype(np.float64), minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


@register_metric(
    "p_top1_change", higher_is_better=False, label="P(top-1 change)", short="P(change)"
)
def p_top1_change(seq: PredictionSequences, **context) -> np.ndarray:
    """Fraction of consecutive view pairs whose top-1 classes differ.

    Per image: (1 / (V - 1)) * sum_k [top1_k != top1_{k+1}]; `flip_probability` at
    difficulty 1 is the same quantity.
    """
    rows, groups = seq.pair_rows()
    changed = seq.top1[rows] != seq.top1[rows - 1]
    return _per_image_mean(changed, groups, seq.n_images)


@register_metric("mac", higher_is_better=False, label="MAC", short="MAC")
def mac(seq: PredictionSequences, **context) -> np.ndarray:
    """Mean absolute change |p_k(t_k) - p_{k+1}(t_k)|, t_k the top-1 class of view k.

    p_k(t_k) is view k's top-1 probability; p_{k+1}(t_k) is `p_prev_top1` of view k+1, taken
    from view k+1's full probability vector, so the value is exact.
    """
    rows, groups = seq.pair_rows()
    change = np.abs(seq.top5_probs[rows - 1, 0] - seq.p_prev_top1[rows])
    return _per_image_mean(change, groups, seq.n_images)


def _ref_in_top5(seq: PredictionSequences) -> np.ndarray:
    return (seq.top5_ids == seq.ref_class[:, None]).any(axis=1)


@register_metric("jaggedness", higher_is_better=False, short="jagged")
def jaggedness(seq: PredictionSequences, **context) -> np.ndarray:
    """Fraction of consecutive pairs where 'c* is in the top-5' changes (in->out or out->in).

    c* is the image's reference class: its label, else the top-1 class of its first view.
    """
    rows, groups = seq.pair_rows()
    inside = _ref_in_top5(seq)
    return _per_image_mean(inside[rows] != inside[rows - 1], groups, seq.n_images)


@register_metric("accuracy", higher_is_better=True, needs_labels=True, short="acc")
def accuracy(seq: PredictionSequences, **context) -> np.ndarray:
    """Fraction of views whose top-1 is the label (NaN without a label)."""
    groups = np.repeat(np.arange(seq.n_images), seq.n_views)
    values = _per_image_mean(seq.top1 == seq.label, groups, seq.n_images)
    labelled = seq.label[seq.starts] >= 0 if seq.n_images else np.zeros(0, bool)
    return np.where(labelled, values, np.nan)


@register_metric(
    "worst_case_accuracy",
    higher_is_better=True,
    needs_labels=True,
    label="worst-case accuracy",
    short="worst acc",
    worst_case=True,
)
def worst_case_accuracy(seq: PredictionSequences, **context) -> np.ndarray:
    """1 when the top-1 is the label at every view of the image, else 0 (NaN without label)."""
    values = accuracy(seq)
    return np.where(np.isnan(values), np.nan, (values == 1.0).astype(np.float64))


def consistency_pairs(
    n_views: int, k: int, seed: int, image_index: int, protocol: str
) -> np.ndarray:
    """The K view pairs (i, j), i != j, drawn for one image: [k, 2] ints. Seeded by
    (seed, image_index, protocol) so every run and every reimplementation draws the same."""
    rng = np.random.default_rng([seed, int(image_index), zlib.crc32(protocol.encode())])
    first = rng.integers(0, n_views, size=k)
    offset = rng.integers(1, n_views, size=k)  # never the same view
    return np.stack([first, (first + offset) % n_views], axis=1)


@register_metric("consistency", higher_is_better=True, short="consist.")
def consistency(seq: PredictionSequences, **context) -> np.ndarray:
    """Fraction of a paired protocol's view pairs with equal top-1 (Zhang, ICML 2019; APS).

    Defined for the protocols that draw independent pairs (`zhang`, `aps_roll`: pairs
    (2i, 2i+1)), where it is the number of the papers' tables; NaN for path protocols, whose
    random-pair agreement is `path_consistency`.
    """
    if seq.pairing != "disjoint":
        return np.full(seq.n_images, np.nan)
    rows, groups = seq.pair_rows()
    agree = seq.top1[rows] == seq.top1[rows - 1]
    return _per_image_mean(agree, groups, seq.n_images)


@register_metric("path_consistency", higher_is_better=True, short="path cons.")
def path_consistency(
    seq: PredictionSequences, *, seed: int = 0, k: int = 10, protocol: str = "", **context
) -> np.ndarray:
    """Fraction of K seeded random pairs of views along a path protocol with equal top-1.

    The views of a path lie a few pixels apart, so this is not the `consistency` of Zhang's
    or APS's tables (use the `zhang` and `aps_roll` protocols for those). The pairs of each
    image come from `consistency_pairs(V, k, seed, image_index, protocol)`; NaN for paired
    protocols.
    """
    out = np.full(seq.n_images, np.nan)
    if seq.pairing == "disjoint":
        return out
    top1 = seq.top1
    for g, (start, n) in enumerate(zip(seq.starts, seq.n_views, strict=True)):
        if n < 2:
            continue
        pairs = consistency_pairs(int(n), k, seed, int(seq.image_index[start]), protocol)
        out[g] = np.mean(top1[start + pairs[:, 0]] == top1[start + pairs[:, 1]])
    return out


def pairs_apart(seq: PredictionSequences, difficulty: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Rows (j + d) of every pair of views d = `difficulty` apart inside one image, and each
    pair's image (group) index, as (rows, groups); the earlier view of a pair is row - d.

    This is the walk of ImageNet-P's `test.py` for non-noise perturbations (Hendrycks &
    Dietterich, ICLR 2019): for each offset i < d it steps through frames i, i + d, i + 2d, ...
    comparing each with the one before, which together visits every pair (j, j + d) once.
    For a protocol of independent pairs the pairs are its own (d = 1 only).
    """
    if difficulty < 1:
        raise ValueError(f"difficulty must be at least 1 (got {difficulty})")
    if seq.pairing == "disjoint":
        # independent pairs (zhang, aps_roll): only a pair's two views are one step apart
        if difficulty == 1:
            return seq.pair_rows()
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    n = len(seq.image_index)
    groups = np.repeat(np.arange(seq.n_images), seq.n_views)
    position = np.arange(n) - np.repeat(seq.starts, seq.n_views)
    rows = np.nonzero(position >= difficulty)[0]
    return rows, groups[rows]


@register_metric("flip_probability", higher_is_better=False, short="flip prob.")
def flip_probability(seq: PredictionSequences, *, difficulty: int = 1, **context) -> np.ndarray:
    """ImageNet-P's flip probability: fraction of view pairs d = --difficulty apart whose
    top-1 classes differ.

    Per image: (1 / (V - d)) * sum_j [top1_j != top1_{j+d}] (Hendrycks & Dietterich, ICLR
    2019, non-noise sequences); NaN when V <= d. At d = 1 it equals `p_top1_change`.
    """
    rows, groups = pairs_apart(seq, difficulty)
    changed = seq.top1[rows] != seq.top1[rows - difficulty]
    return _per_image_mean(changed, groups, seq.n_images)


@register_metric(
    "top5_distance", higher_is_better=False, label="top-5 distance", short="top5 dist", digits=2
)
def top5_distance(seq: PredictionSequences, *, difficulty: int = 1, **context) -> np.ndarray:
    """ImageNet-P's top-5 distance between views d = --difficulty apart, averaged over pairs.

    Per pair (j, j + d) (Hendrycks & Dietterich, ICLR 2019): sigma(i) is the 1-based rank in
    view j + d of the class ranked i-th in view j, and the distance is
    sum over i = 1..5 of |(i - 1) - min(sigma(i) - 1, 5)|, so a rank past the top-5 counts as
    6; computable from the stored top-5 ids. Range 0..25; NaN when V <= d.
    """
    rows, groups = pairs_apart(seq, difficulty)
    prev = seq.top5_ids[rows - difficulty]  # [P, 5]
    cur = seq.top5_ids[rows]  # [P, 5]
    match = prev[:, :, None] == cur[:, None, :]  # [P, 5, 5]
    new_rank = np.where(match.any(axis=2), match.argmax(axis=2), 5)
    distance = np.abs(np.arange(5)[None, :] - new_rank).sum(axis=1)
    return _per_image_mean(distance, groups, seq.n_images)


@register_metric("pmk_accuracy", higher_is_better=True, needs_labels=True, short="pm-k acc")
def pmk_accuracy(seq: PredictionSequences, *, pmk: int = 10, **context) -> np.ndarray:
    """pm-k accuracy: fraction of views right together with every view within k = --pmk of
    them (Shankar et al., ICCV 2021); NaN without a label.

    View j counts only when top1 = label at every view j' of its image with |j' - j| <= k
    (the neighbourhood is cut at the sequence's ends). k = 0 is plain (benign) accuracy.
    """
    if pmk < 0:
        raise ValueError(f"pm-k needs k >= 0 (got {pmk})")
    correct = seq.top1 == seq.label
    out = np.full(seq.n_images, np.nan)
    for g, (start, end) in enumerate(zip(seq.starts, seq.ends, strict=True)):
        if end <= start or seq.label[start] < 0:
            continue
        wrong = np.concatenate([[0], np.cumsum(~correct[start:end])])
        j = np.arange(end - start)
        lo, hi = np.maximum(j - pmk, 0), np.minimum(j + pmk + 1, end - start)
        out[g] = np.mean(wrong[hi] - wrong[lo] == 0)
    return out


def per_image_metrics(
    seq: PredictionSequences,
    *,
    seed: int = 0,
    consistency_k: int = 10,
    protocol: str = "",
    difficulty: int = 1,
    pmk: int = 10,
    feature_threshold: float | None = None,
) -> dict[str, np.ndarray]:
    """Every registered metric, per image: {name: [G] array}; NaN (undefined) for an image
    with a view whose outputs were NaN or Inf (except on worst-case sets, where such a view
    simply fails), and for the class metrics of a run that measured no logits. `feature_threshold`: the cosine distance beyond which a pair's
    representation counts as changed (None: the default, `DEFAULT_FEATURE_THRESHOLD`)."""
    context = {
        "seed": seed,
        "k": consistency_k,
        "protocol": protocol,
        "difficulty": difficulty,
        "pmk": pmk,
    }
    if feature_threshold is not None:
        context["feature_threshold"] = feature_threshold
    seq = paired_as(seq, protocol)
    no_logits = not seq.has_logits
    values = {
        name: (
            np.full(seq.n_images, np.nan)
            if info.needs == "logits" and no_logits
            else info.fn(seq, **context)
        )
        for name, info in _METRICS.items()
    }
    if _worst_case_set(seq, protocol):  # only what an early exit leaves unchanged
        # no void images here: a non-finite view does not hold (`view_holds`), so the image
        # is not robust whether or not an early exit reached that view
        return {
            name: v if _METRICS[name].worst_case else np.full(seq.n_images, np.nan)
            for name, v in values.items()
        }
    void = seq.void_images()
    if void.any():
        values = {name: np.where(void, np.nan, v.astype(np.float64)) for name, v in values.items()}
    return values


def paired_as(seq: PredictionSequences, protocol: str) -> PredictionSequences:
    """`seq` with the pairing of protocol key `protocol` (see `protocol_pairing`)."""
    pairing = protocol_pairing(protocol)
    return seq if pairing == seq.pairing else dataclasses.replace(seq, pairing=pairing)


def protocol_pairing(key: str) -> str:
    """How the views of protocol `key` (`black@117`, `zhang`) pair up: 'consecutive' or
    'disjoint'; 'consecutive' for a protocol this install does not know."""
    from ..errors import ArgumentError
    from ..protocols._registry import protocol_class

    try:
        return protocol_class(key.split("@", 1)[0]).pairing if key else "consecutive"
    except ArgumentError:
        return "consecutive"


def _worst_case_set(seq: PredictionSequences, protocol: str) -> bool:
    from ._worst_case import is_worst_case

    return is_worst_case(seq, protocol)
