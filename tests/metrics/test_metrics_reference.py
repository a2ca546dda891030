"""Every metric against a slow, obvious reference implementation on random sequences."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from jaggy.metrics import bootstrap_mean_ci, list_metrics, metric_info, per_image_metrics
from jaggy.metrics._functional import (
    accuracy,
    consistency,
    consistency_pairs,
    jaggedness,
    mac,
    p_top1_change,
    path_consistency,
    top5_distance,
    worst_case_accuracy,
)
from jaggy.results import PredictionSequences

N_CLASSES = 12


def random_rows(seed: int, n_images: int = 7, labelled: bool = True):
    """Prediction rows built from full random probability vectors, like the engine does,
    in shuffled order; plus the full probability vectors for the references."""
    rng = np.random.default_rng(seed)
    rows, probs_of = [], {}
    for image in range(n_images):
        n_views = int(rng.integers(1, 9))
        label = int(rng.integers(0, N_CLASSES)) if labelled and rng.random() < 0.8 else -1
        # few classes dominate, so top-1 changes happen but not always
        logits = rng.normal(size=(n_views, N_CLASSES)) * 2
        logits[:, :3] += 2.5
        probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        probs_of[image] = (probs, label)
        ref = label if label >= 0 else int(probs[0].argmax())
        for v in range(n_views):
            order = np.argsort(-probs[v], kind="stable")
            prev_top1 = int(probs[v - 1].argmax()) if v else None
            rows.append(
                {
                    "image_index": image,
                    "view": v,
                    "label": label,
                    "ref_class": ref,
                    "top5_ids": order[:5].tolist(),
                    "top5_probs": probs[v][order[:5]].tolist(),
                    "p_ref": float(probs[v][ref]),
                    "p_prev_top1": None if prev_top1 is None else float(probs[v][prev_top1]),
                }
            )
    rng.shuffle(rows)
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    return PredictionSequences.from_columns(columns), probs_of


# --- slow references: loops over each image's full probability vectors -------------------


def ref_p_top1_change(probs):
    top1 = [int(p.argmax()) for p in probs]
    pairs = [(top1[i], top1[i + 1]) for i in range(len(top1) - 1)]
    return math.nan if not pairs else sum(a != b for a, b in pairs) / len(pairs)


def ref_mac(probs):
    values = []
    for i in range(len(probs) - 1):
        t = int(probs[i].argmax())
        values.append(abs(probs[i][t] - probs[i + 1][t]))
    return math.nan if not values else sum(values) / len(values)


def ref_in_top5(p, c):
    return c in list(np.argsort(-p, kind="stable")[:5])


def ref_jaggedness(probs, ref):
    inside = [ref_in_top5(p, ref) for p in probs]
    pairs = [inside[i] != inside[i + 1] for i in range(len(inside) - 1)]
    return math.nan if not pairs else sum(pairs) / len(pairs)


def ref_accuracy(probs, label):
    if label < 0:
        return math.nan
    return sum(int(p.argmax()) == label for p in probs) / len(probs)


def ref_worst(probs, label):
    if label < 0:
        return math.nan
    return float(all(int(p.argmax()) == label for p in probs))


def ref_top5_distance(probs):
    """ImageNet-P's definition written out: ranks of every class, then the distance between
    the previous view's top-5 positions and those classes' positions in the next view."""
    values = []
    for i in range(len(probs) - 1):
        rank_prev = np.argsort(-probs[i], kind="stable")  # position -> class
        rank_next = {c: r for r, c in enumerate(np.argsort(-probs[i + 1], kind="stable"))}
        d = 0
        for k in range(5):
            new = rank_next[int(rank_prev[k])]
            d += abs(k - min(new, 5))
        values.append(d)
    return math.nan if not values else sum(values) / len(values)


def ref_consistency(probs, image, k, seed, protocol):
    if len(probs) < 2:
        return math.nan
    top1 = [int(p.argmax()) for p in probs]
    pairs = consistency_pairs(len(probs), k, seed, image, protocol)
    return sum(top1[a] == top1[b] for a, b in pairs) / k


def assert_close(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        if math.isnan(w):
            assert math.isnan(g)
        else:
            assert g == pytest.approx(w, abs=1e-9)


@pytest.mark.parametrize("seed", range(8))
def test_metrics_match_references(seed):
    seq, probs_of = random_rows(seed)
    images = sorted(probs_of)
    assert_close(p_top1_change(seq), [ref_p_top1_change(probs_of[i][0]) for i in images])
    assert_close(mac(seq), [ref_mac(probs_of[i][0]) for i in images])
    refs = {
        i: (probs_of[i][1] if probs_of[i][1] >= 0 else int(probs_of[i][0][0].argmax()))
        for i in images
    }
    assert_close(jaggedness(seq), [ref_jaggedness(probs_of[i][0], refs[i]) for i in images])
    assert_close(accuracy(seq), [ref_accuracy(*probs_of[i]) for i in images])
    assert_close(worst_case_accuracy(seq), [ref_worst(*probs_of[i]) for i in images])
    assert_close(top5_distance(seq), [ref_top5_distance(probs_of[i][0]) for i in images])
    assert_close(
        path_consistency(seq, seed=3, k=7, protocol="crop"),
        [ref_consistency(probs_of[i][0], i, 7, 3, "crop") for i in images],
    )
    # consistency is the papers' number: only protocols that draw independent pairs have it
    assert np.isnan(consistency(seq)).all()


def ref_disjoint_pairs(probs):
    """The pairs of a paired protocol written out: views (0, 1), (2, 3), ..."""
    return [(probs[i], probs[i + 1]) for i in range(0, len(probs) - 1, 2)]


@pytest.mark.parametrize("seed", range(6))
def test_paired_protocols_compare_only_their_pairs(seed):
    seq, probs_of = random_rows(seed)
    paired = dataclasses.replace(seq, pairing="disjoint")
    images = sorted(probs_of)

    def mean_over_pairs(fn):
        out = []
        for i in images:
            pairs = ref_disjoint_pairs(probs_of[i][0])
            out.append(math.nan if not pairs else sum(fn(a, b) for a, b in pairs) / len(pairs))
        return out

    assert_close(consistency(paired), mean_over_pairs(lambda a, b: a.argmax() == b.argmax()))
    assert_close(p_top1_change(paired), mean_over_pairs(lambda a, b: a.argmax() != b.argmax()))
    assert_close(mac(paired), mean_over_pairs(lambda a, b: abs(a[a.argmax()] - b[a.argmax()])))
    assert_close(
        top5_distance(paired),
        mean_over_pairs(lambda a, b: ref_top5_distance(np.stack([a, b]))),
    )
    assert np.isnan(path_consistency(paired)).all()
    assert paired.n_pairs == sum(len(probs_of[i][0]) // 2 for i in images)
    # the summariser knows which protocols are paired from the protocol registry
    by_name = per_image_metrics(seq, protocol="zhang")
    assert_close(by_name["consistency"], consistency(paired).tolist())
    assert np.isnan(per_image_metrics(seq, protocol="crop")["consistency"]).all()


def test_unlabelled_sequences_have_no_accuracy():
    seq, _ = random_rows(1, labelled=False)
    assert np.isnan(accuracy(seq)).all()
    assert np.isnan(worst_case_accuracy(seq)).all()


def test_consistency_pairs_are_distinct_views_and_seeded():
    a = consistency_pairs(5, 50, seed=1, image_index=3, protocol="black@117")
    b = consistency_pairs(5, 50, seed=1, image_index=3, protocol="black@117")
    c = consistency_pairs(5, 50, seed=2, image_index=3, protocol="black@117")
    assert (a == b).all() and not (a == c).all()
    assert (a[:, 0] != a[:, 1]).all() and a.min() >= 0 and a.max() < 5


@pytest.mark.parametrize("name", list_metrics())
def test_every_registered_metric_returns_one_value_per_image(name):
    seq, probs_of = random_rows(5)
    values = per_image_metrics(seq)[name]
    assert values.shape == (len(probs_of),)
    finite = values[np.isfinite(values)]
    assert ((finite >= 0) & (finite <= (25 if name == "top5_distance" else 1))).all()
    assert isinstance(metric_info(name).higher_is_better, bool)


def test_bootstrap_ci_contains_mean_and_is_seeded():
    values = np.random.default_rng(0).random(50)
    mean, (lo, hi) = bootstrap_mean_ci(values, seed=4)
    assert lo <= mean <= hi
    assert mean == pytest.approx(values.mean())
    assert bootstrap_mean_ci(values, seed=4) == (mean, [lo, hi])
    # a slow percentile bootstrap with the same generator gives the same interval
    rng = np.random.default_rng(4)
    means = [values[rng.integers(0, 50, size=50)].mean() for _ in range(1000)]
    assert [lo, hi] == pytest.approx(list(np.quantile(means, [0.025, 0.975])))


def test_bootstrap_edge_cases():
    assert bootstrap_mean_ci(np.array([np.nan, np.nan])) == (None, [None, None])
    assert bootstrap_mean_ci(np.array([0.25])) == (0.25, [0.25, 0.25])
