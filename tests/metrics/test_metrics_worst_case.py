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


def engstrom_grid_correct(is_correct: list[bool]) -> bool:
    """attack_steps.Spatial (grid): the first view that is not correct is the adversarial
    example; the image counts as right only when there is none."""
    argmin = int(np.argmin(np.asarray(is_correct) * 1.0))
    return bool(is_correct[argmin])


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
        assert robust[g] == float(engstrom_grid_correct(correct))


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
