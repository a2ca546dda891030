"""Representation-change metrics against plain loops over views, and against a transcription of
the definitions of "Lost in Translation" (Shifman & Weiss, ECCV 2024)."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
import torch

from jaggy.engine._forward import representation_change
from jaggy.metrics import (
    DEFAULT_FEATURE_THRESHOLD,
    _representation,
    list_metrics,
    metric_info,
    per_image_metrics,
)
from jaggy.metrics._representation import check_feature_threshold
from jaggy.results import PredictionSequences

FEATURE_METRICS = [n for n in list_metrics() if metric_info(n).needs == "features"]


def plain_cos_distance(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return 1.0 - float(a @ b) / (math.sqrt(a @ a) * math.sqrt(b @ b))


def plain_rel_l2(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return math.sqrt(((b - a) ** 2).sum()) / math.sqrt(a @ a)


def random_feature_rows(seed: int, pairing: str, n_images: int = 6, dim: int = 12):
    """Rows of random images whose views carry random feature vectors (some nearly equal,
    some far apart), with feat_cos / feat_rel_l2 from a plain loop; plus the vectors."""
    rng = np.random.default_rng(seed)
    rows, vectors_of = [], {}
    for image in range(n_images):
        n_views = 2 * int(rng.integers(1, 5)) if pairing == "disjoint" else int(rng.integers(1, 9))
        base = rng.normal(size=dim)
        vectors = base + rng.normal(size=(n_views, dim)) * rng.choice(
            [0.01, 0.1, 0.5], (n_views, 1)
        )
        vectors_of[image] = vectors
        for v in range(n_views):
            partner = (v - 1) if (v % 2 == 1 if pairing == "disjoint" else v > 0) else None
            cos = np.nan if partner is None else plain_cos_distance(vectors[partner], vectors[v])
            rel = np.nan if partner is None else plain_rel_l2(vectors[partner], vectors[v])
            rows.append(
                {
                    "image_index": image,
                    "view": v,
                    "label": -1,
                    "ref_class": -1,
                    "top5_ids": [-1] * 5,
                    "top5_probs": [np.nan] * 5,
                    "p_ref": np.nan,
                    "p_prev_top1": np.nan,
                    "feat_cos": cos,
                    "feat_rel_l2": rel,
                }
            )
    rng.shuffle(rows)
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    seq = PredictionSequences.from_columns(columns)
    seq.pairing = pairing
    return seq, vectors_of


def plain_pairs(vectors: np.ndarray, pairing: str) -> list[tuple[int, int]]:
    n = len(vectors)
    if pairing == "disjoint":
        return [(i, i + 1) for i in range(0, n - 1, 2)]
    return [(i, i + 1) for i in range(n - 1)]


def plain_metrics(vectors: np.ndarray, pairing: str, tau: float) -> dict[str, float]:
    """The four metrics of one image by a loop over its pairs of views."""
    pairs = plain_pairs(vectors, pairing)
    if not pairs:
        return dict.fromkeys(FEATURE_METRICS, math.nan)
    cos = [plain_cos_distance(vectors[a], vectors[b]) for a, b in pairs]
    rel = [plain_rel_l2(vectors[a], vectors[b]) for a, b in pairs]
    return {
        "feature_cos_distance": sum(cos) / len(cos),
        "feature_rel_l2": sum(rel) / len(rel),
        "representation_change_rate": sum(c > tau for c in cos) / len(cos),
        "fooling_rate": float(any(c > tau for c in cos)),
    }


@pytest.mark.parametrize("pairing", ["consecutive", "disjoint"])
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("tau", [DEFAULT_FEATURE_THRESHOLD, 0.05])
def test_feature_metrics_match_a_plain_loop(seed, pairing, tau):
    seq, vectors_of = random_feature_rows(seed, pairing)
    protocol = "neighbours" if pairing == "disjoint" else "crop"  # sets the pairing
    got = per_image_metrics(seq, feature_threshold=tau, protocol=protocol)
    for g in range(seq.n_images):
        image = int(seq.image_index[seq.starts[g]])
        want = plain_metrics(vectors_of[image], pairing, tau)
        for name in FEATURE_METRICS:
            if math.isnan(want[name]):
                assert math.isnan(got[name][g]), (name, image)
            else:
                assert got[name][g] == pytest.approx(want[name], rel=1e-9, abs=1e-12), name


def test_class_metrics_are_undefined_without_logits():
    seq, _ = random_feature_rows(0, "consecutive")
    got = per_image_metrics(seq)
    for name in list_metrics():
        if metric_info(name).needs == "logits":
            assert np.isnan(got[name]).all(), name
    assert np.isfinite(got["feature_cos_distance"]).any()


def test_an_undefined_pair_makes_the_image_undefined_not_stable():
    seq, _ = random_feature_rows(1, "consecutive")
    second = seq.starts[np.argmax(seq.n_views > 1)] + 1
    seq.feat_cos[second] = np.nan
    g = int(np.searchsorted(seq.starts, second, "right") - 1)
    got = per_image_metrics(seq)
    assert np.isnan(got["fooling_rate"][g]) and np.isnan(got["representation_change_rate"][g])


@pytest.mark.parametrize("seed", range(3))
def test_engine_pair_statistics_equal_a_plain_loop(seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(20, 9)).astype(np.float32)
    b = (a + rng.normal(size=a.shape) * rng.choice([1e-3, 0.1, 1.0], (20, 1))).astype(np.float32)
    cos, rel = representation_change(torch.from_numpy(a), torch.from_numpy(b))
    for i in range(20):
        assert float(cos[i]) == pytest.approx(plain_cos_distance(a[i], b[i]), rel=1e-4, abs=1e-7)
        assert float(rel[i]) == pytest.approx(plain_rel_l2(a[i], b[i]), rel=1e-5)


def test_engine_pair_statistics_of_a_zero_vector_are_undefined():
    a = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    b = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    cos, rel = representation_change(a, b)
    assert torch.isnan(cos).all() and torch.isnan(rel).all()


def paper_adversarial_robustness(f_centre, f_neighbours, changed) -> bool:
    """Shifman & Weiss's adversarial robustness of one image, transcribed: robust when the
    output of the centre equals the output of every shifted view T(I, Δ), Δ in the set; here
    'equal' is `not changed(f(I), f(T(I, Δ)))`."""
    return all(not changed(f_centre, f_shifted) for f_shifted in f_neighbours)


def paper_consistency(f_centre, f_neighbours, changed) -> float:
    """Their consistency, E_Δ[f(I) == f(T(I, Δ))], over the set of shifts of one image."""
    return sum(not changed(f_centre, f) for f in f_neighbours) / len(f_neighbours)


@pytest.mark.parametrize("seed", range(3))
def test_neighbours_metrics_are_the_papers_definitions_on_features(seed):
    tau = 0.02
    rng = np.random.default_rng(seed)
    rows, expected = [], {}
    for image in range(5):
        centre = rng.normal(size=8)
        neighbours = [centre + rng.normal(size=8) * rng.choice([0.01, 0.3]) for _ in range(8)]

        def changed(a, b):
            return plain_cos_distance(a, b) > tau

        expected[image] = (
            1.0 - paper_consistency(centre, neighbours, changed),
            1.0 - float(paper_adversarial_robustness(centre, neighbours, changed)),
        )
        for i, shifted in enumerate(neighbours):  # the neighbours protocol's view order
            for v, (partner, f) in enumerate([(None, centre), (centre, shifted)]):
                rows.append(
                    {
                        "image_index": image,
                        "view": 2 * i + v,
                        "label": -1,
                        "ref_class": -1,
                        "top5_ids": [-1] * 5,
                        "top5_probs": [np.nan] * 5,
                        "p_ref": np.nan,
                        "p_prev_top1": np.nan,
                        "feat_cos": np.nan if partner is None else plain_cos_distance(partner, f),
                        "feat_rel_l2": np.nan if partner is None else plain_rel_l2(partner, f),
                    }
                )
    seq = PredictionSequences.from_columns({k: [r[k] for r in rows] for k in rows[0]})
    got = per_image_metrics(seq, protocol="neighbours", feature_threshold=tau)
    for image, (change_rate, fooled) in expected.items():
        assert got["representation_change_rate"][image] == pytest.approx(change_rate)
        assert got["fooling_rate"][image] == fooled


@pytest.mark.parametrize("seed", range(3))
def test_top1_fooling_rate_is_the_papers_adversarial_robustness_on_classes(seed):
    rng = np.random.default_rng(seed)
    rows, expected = [], {}
    for image in range(6):
        centre = int(rng.integers(0, 3))
        shifted = [int(rng.choice([centre, centre, centre, rng.integers(0, 3)])) for _ in range(8)]
        fooled = 1.0 - float(paper_adversarial_robustness(centre, shifted, lambda a, b: a != b))
        expected[image] = fooled
        for i, top1 in enumerate(shifted):
            for v, cls in enumerate([centre, top1]):
                rows.append(
                    {
                        "image_index": image,
                        "view": 2 * i + v,
                        "label": -1,
                        "ref_class": centre,
                        "top5_ids": [cls, 7, 8, 9, 10],
                        "top5_probs": [0.5, 0.2, 0.1, 0.1, 0.1],
                        "p_ref": 0.5,
                        "p_prev_top1": 0.5,
                    }
                )
    seq = PredictionSequences.from_columns({k: [r[k] for r in rows] for k in rows[0]})
    got = per_image_metrics(seq, protocol="neighbours")
    for image, fooled in expected.items():
        assert got["top1_fooling_rate"][image] == fooled
    assert np.isnan(got["fooling_rate"]).all()  # no features measured


def test_representation_docstring_examples():
    result = doctest.testmod(_representation, verbose=False)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("bad", [0, -0.1, 2, float("nan"), float("inf"), "0.1", True])
def test_feature_threshold_must_be_a_cosine_distance(bad):
    with pytest.raises(ValueError, match="feature threshold"):
        check_feature_threshold(bad)
