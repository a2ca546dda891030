"""Worst-case metrics against slow references and the peers' definitions (AFC, Engstrom)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from jaggy.metrics import list_metrics, metric_info, per_image_metrics
from jaggy.metrics._worst_case import (
    clean_accuracy,
    failing_angle,
    failing_shift,
    robust_accuracy,
    worst_of_k_accuracy,
)
from jaggy.results import PredictionSequences

N_CLASSES = 6


def random_searches(seed: int, labelled: bool = True, n_images: int = 9):
    """Rows of worst-case searches: per image, views with a shift and an angle and a top-1
    that mostly keeps one class; shuffled. Returns the sequences and, per image, its views
    as (top1, label, dx, dy, angle, finite) in view order."""
    rng = np.random.default_rng(seed)
    rows, views_of = [], {}
    for image in range(n_images):
        n = int(rng.integers(1, 12))
        label = int(rng.integers(0, 3)) if labelled and rng.random() < 0.8 else -1
        keep = int(rng.integers(0, 3))
        top1 = np.where(rng.random(n) < 0.85, keep, rng.integers(0, N_CLASSES, n))
        dx, dy, angle = rng.normal(size=n) * 3, rng.normal(size=n) * 3, rng.normal(size=n) * 10
        finite = rng.random(n) > 0.03
        ref = label if label >= 0 else int(top1[0])
        views_of[image] = [
            (int(top1[v]), label, dx[v], dy[v], angle[v], bool(finite[v])) for v in range(n)
        ]
        for v in range(n):
            ids = [int(top1[v])] + [c for c in range(N_CLASSES) if c != top1[v]][:4]
            rows.append(
                {
                    "image_index": image,
                    "view": v,
                    "label": label,
                    "ref_class": ref,
                    "top5_ids": ids,
                    "top5_probs": [0.5, 0.2, 0.1, 0.1, 0.1],
                    "p_ref": 0.5,
                    "p_prev_top1": None if v == 0 else 0.5,
                    "dx": dx[v],
                    "dy": dy[v],
                    "angle": angle[v],
                    "finite": bool(finite[v]),
                }
            )
    rng.shuffle(rows)
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    seq = PredictionSequences.from_columns(columns, protocol="worst@grid", protocol_name="worst")
    return seq, views_of


# --- slow references: one loop per image over its views, in order ------------------------


def ref_first_failure(views):
    """The first view whose top-1 is not c* (label, else view 0's top-1) or not finite."""
    ref = views[0][1] if views[0][1] >= 0 else views[0][0]
    for top1, _label, dx, dy, angle, finite in views:
        if top1 != ref or not finite:
            return dx, dy, angle
    return None


def ref_robust(views):
    return 0.0 if ref_first_failure(views) is not None else 1.0


def ref_failing_shift(views):
    first = ref_first_failure(views)
    return math.nan if first is None else math.hypot(first[0], first[1])


def ref_failing_angle(views):
    first = ref_first_failure(views)
    return math.nan if first is None else abs(first[2])


def ref_clean_accuracy(views):
    top1, label = views[0][0], views[0][1]
    return math.nan if label < 0 else float(top1 == label)


def afc_robust_score(correct_clean: bool, correct_shifted: list[bool]) -> bool:
    """AFC's shift_eval.py: robust_shift = correct; robust_shift &= correct_shift per shift."""
    robust_shift = correct_clean
    for correct_shift in correct_shifted:
        robust_shift = robust_shift & correct_shift
    return robust_shift


def engstrom_grid_correct(views, clean: int) -> bool:
    """Engstrom's grid (attack_steps.Spatial 'grid', then attacker.py with TRIES=1,
    USE_BEST=1). `views`: (is_correct, loss) in `itertools.product(rots, trans, trans)`
    order, `clean` the index of the untransformed one. The attack returns the first view
    that is not correct (batches of 200, argmin in each), else the first view; the attacker
    keeps the clean image unless that view's loss is higher; the image is right when the
    kept one is."""
    chosen = 0
    for i in range(0, len(views), 200):
        batch = [correct for correct, _ in views[i : i + 200]]
        argmin = int(np.argmin(np.asarray(batch) * 1.0))
        if batch[argmin] == 0:
            chosen = i + argmin
            break
    best_correct, best_loss = views[clean]
    if views[chosen][1] > best_loss:
        best_correct = views[chosen][0]
    return bool(best_correct)


def assert_close(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        if math.isnan(w):
            assert math.isnan(g)
        else:
            assert g == pytest.approx(w, abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("labelled", [True, False])
def test_worst_case_metrics_match_references(seed, labelled):
    seq, views_of = random_searches(seed, labelled)
    images = sorted(views_of)
    context = {"protocol": "worst@grid"}
    assert_close(robust_accuracy(seq, **context), [ref_robust(views_of[i]) for i in images])
    assert_close(failing_shift(seq, **context), [ref_failing_shift(views_of[i]) for i in images])
    assert_close(failing_angle(seq, **context), [ref_failing_angle(views_of[i]) for i in images])
    assert_close(clean_accuracy(seq, **context), [ref_clean_accuracy(views_of[i]) for i in images])


@pytest.mark.parametrize("seed", range(4))
def test_robust_accuracy_is_the_peers_number_with_labels(seed):
    seq, views_of = random_searches(seed, labelled=True)
    finite = dataclasses.replace(seq, finite=np.ones(len(seq.view), dtype=bool))
    robust = robust_accuracy(finite, protocol="worst@circular")
    for g, image in enumerate(sorted(views_of)):
        label = views_of[image][0][1]
        if label < 0:
            continue
        correct = [top1 == label for top1, *_ in views_of[image]]
        assert robust[g] == float(afc_robust_score(correct[0], correct[1:]))


@pytest.mark.parametrize("seed", range(4))
def test_robust_accuracy_is_at_most_engstroms_grid_accuracy(seed):
    """Engstrom's grid accuracy scores one view (the first misclassified one, kept only when
    its loss is above the clean image's): right at every view implies right there, not the
    other way round, so jaggy labels grid's robust accuracy "all views right"."""
    rng = np.random.default_rng(seed)
    strictly = 0
    for _ in range(200):
        n = int(rng.integers(2, 500))
        correct = rng.random(n) < rng.choice([0.97, 0.999, 1.0])
        loss = rng.choice([0.5, 1.0, 2.0], size=n)
        clean = int(rng.integers(0, n))
        views = list(zip(correct.tolist(), loss.tolist(), strict=True))
        engstrom = engstrom_grid_correct(views, clean)
        robust = bool(afc_robust_score(correct[clean], correct.tolist()))
        assert robust <= engstrom
        strictly += engstrom and not robust
    assert strictly, "some image right by Engstrom's grid but not at every view"


def test_only_worst_case_metrics_are_defined_on_worst_case_sets():
    seq, _ = random_searches(2)
    values = per_image_metrics(seq, protocol="worst@grid")
    void = seq.void_images()
    for name in list_metrics():
        if metric_info(name).worst_case:
            continue
        assert np.isnan(values[name]).all(), name  # an early exit would change them
    assert np.isfinite(values["robust_accuracy"]).all()
    # a NaN/Inf view fails (as in AFC, where it is not correct): not robust, not undefined
    assert (values["robust_accuracy"][void] == 0).all()
    # and the worst-case metrics are NaN on every other protocol
    other = dataclasses.replace(seq, protocol="crop", protocol_name="crop")
    values = per_image_metrics(other, protocol="crop")
    for name in ("robust_accuracy", "clean_accuracy", "failing_shift", "failing_angle"):
        assert np.isnan(values[name]).all(), name
    assert not np.isnan(values["p_top1_change"]).all()


def random_draws(seed: int, labelled: bool, n_images: int = 12):
    """Rows of randomK sets (K + 1 views each) with random top-1s and p_ref values (some
    tied), all finite. Returns the sequences and, per image, (top1, c*, p_ref) per view."""
    rng = np.random.default_rng(seed)
    rows, views_of = [], {}
    for image in range(n_images):
        n = int(rng.integers(1, 12))
        label = int(rng.integers(0, 3)) if labelled and rng.random() < 0.8 else -1
        top1 = np.where(rng.random(n) < 0.6, 1, rng.integers(0, 3, n))
        p_ref = rng.choice([0.1, 0.2, 0.3, 0.4, 0.5], size=n)  # ties happen
        ref = label if label >= 0 else int(top1[0])
        views_of[image] = [(int(top1[v]), ref, float(p_ref[v])) for v in range(n)]
        for v in range(n):
            ids = [int(top1[v])] + [c for c in range(N_CLASSES) if c != top1[v]][:4]
            rows.append(
                {
                    "image_index": image,
                    "view": v,
                    "label": label,
                    "ref_class": ref,
                    "top5_ids": ids,
                    "top5_probs": [0.5, 0.2, 0.1, 0.1, 0.1],
                    "p_ref": float(p_ref[v]),
                    "p_prev_top1": None if v == 0 else 0.5,
                    "dx": 0.0,
                    "dy": 0.0,
                    "angle": 0.0,
                    "finite": True,
                }
            )
    rng.shuffle(rows)
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    seq = PredictionSequences.from_columns(
        columns, protocol="worst@random10", protocol_name="worst"
    )
    return seq, views_of


def ref_worst_of_k(views):
    """Slow reference: right at the view of lowest p_ref, the earliest of equal ones."""
    lowest = min(p for _, _, p in views)
    top1, ref, _ = next(v for v in views if v[2] == lowest)
    return float(top1 == ref)


def engstrom_worst_of_k(clean_loss, clean_correct, draws):
    """Engstrom's attacker.py with TRIES = K, USE_BEST = 1: best starts as the clean image
    and its loss; each random draw (loss, correct) replaces it when its loss is higher;
    the image is right when the kept one is."""
    best_loss, best_correct = clean_loss, clean_correct
    for loss, correct in draws:
        if loss > best_loss:
            best_loss, best_correct = loss, correct
    return best_correct


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("labelled", [True, False])
def test_worst_of_k_accuracy_matches_the_reference_and_engstroms_loop(seed, labelled):
    seq, views_of = random_draws(seed, labelled)
    got = worst_of_k_accuracy(seq, protocol="worst@random10")
    robust = robust_accuracy(seq, protocol="worst@random10")
    for g, image in enumerate(sorted(views_of)):
        views = views_of[image]
        assert got[g] == ref_worst_of_k(views)
        losses = [(-math.log(p), top1 == ref) for top1, ref, p in views]
        assert got[g] == float(engstrom_worst_of_k(*losses[0], losses[1:]))
        assert got[g] >= robust[g]  # right at every view: right at the worst one
    assert (got > robust).any() or seed, "some image right at its worst view, wrong elsewhere"


def test_worst_of_k_accuracy_only_on_random_sets_and_a_nan_view_is_the_worst():
    seq, _ = random_draws(0, True)
    assert np.isnan(worst_of_k_accuracy(seq, protocol="worst@grid")).all()
    other = dataclasses.replace(seq, protocol="crop", protocol_name="crop")
    assert np.isnan(worst_of_k_accuracy(other, protocol="crop")).all()
    seq = PredictionSequences.from_columns(
        {
            "image_index": [0, 0, 0],
            "view": [0, 1, 2],
            "label": [1] * 3,
            "ref_class": [1] * 3,
            "top5_ids": [[1, 0, 2, 3, 4]] * 3,
            "top5_probs": [[0.5, 0.2, 0.1, 0.1, 0.1]] * 3,
            "p_ref": [0.5, 0.4, float("nan")],
            "p_prev_top1": [None, 0.5, 0.5],
            "dx": [0.0] * 3,
            "dy": [0.0] * 3,
            "angle": [0.0] * 3,
            "finite": [True, True, False],
        },
        protocol="worst@random2",
        protocol_name="worst",
    )
    assert worst_of_k_accuracy(seq, protocol="worst@random2").tolist() == [0.0]
    assert per_image_metrics(seq, protocol="worst@random2")["worst_of_k_accuracy"].tolist() == [0.0]
