"""Typicality: k-NN distances against brute force, position density against a histogram made
by hand, the network's feature space, and distillation lowering the KL to the teacher."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from jaggy.remedies import blurpool
from jaggy.train import distill
from jaggy.train._analysis import density_bin
from jaggy.train._distill import mean_kl
from jaggy.train._loop import Schedule
from jaggy.train._typicality import (
    density_at,
    knn_distance,
    penultimate_features,
    position_density,
    position_histogram,
    tertile_bins,
)
from jaggy.train.canvasnet import CanvasNet


def brute_force_knn(queries, references, k):
    out = []
    for q in queries:
        distances = sorted(
            math.sqrt(sum((a - b) ** 2 for a, b in zip(q, r, strict=True))) for r in references
        )
        out.append(sum(distances[:k]) / k)
    return np.array(out)


@pytest.mark.parametrize("k", [1, 3, 7])
def test_knn_distance_matches_brute_force(k):
    rng = np.random.default_rng(k)
    queries, references = rng.normal(size=(9, 5)), rng.normal(size=(23, 5))
    assert np.allclose(
        knn_distance(queries, references, k), brute_force_knn(queries, references, k)
    )
    # blocks of queries give the same answer
    assert np.allclose(
        knn_distance(queries, references, k, block=2), knn_distance(queries, references, k)
    )


def test_knn_distance_of_a_training_point_is_zero_for_k1_and_k_checked():
    references = np.eye(4)
    assert knn_distance(references[:2], references, 1).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="k must be"):
        knn_distance(references, references, 5)


def test_position_histogram_and_density_by_hand():
    # canvas 10 px, bins of 4 px: edges 0, 4, 8, 10 (the last bin 2 px wide)
    centres = np.array([[1.0, 1.0], [3.9, 0.5], [4.0, 1.0], [9.5, 9.9], [10.0, 10.0], [5, 9]])
    counts = position_histogram(centres, 10, 4)
    expected = np.zeros((3, 3), dtype=int)
    expected[0, 0] = 2  # (1, 1), (3.9, 0.5)
    expected[0, 1] = 1  # x = 4.0 starts the second bin
    expected[2, 2] = 2  # (9.5, 9.9) and the far edge (10, 10)
    expected[2, 1] = 1  # (5, 9): x bin 1, y bin 2
    assert counts.tolist() == expected.tolist()
    density = position_density(counts, 10, 4)
    areas = np.outer([4, 4, 2], [4, 4, 2])
    assert np.allclose(density, expected / 6 / areas)
    # the density integrates to 1 over the canvas
    assert math.isclose(float((density * areas).sum()), 1.0)
    assert density_at(density, 10, 4, np.array([[0.5, 3.0], [9.0, 9.0], [4.5, 9.5]])).tolist() == [
        pytest.approx(2 / 6 / 16),
        pytest.approx(2 / 6 / 4),
        pytest.approx(1 / 6 / 8),
    ]


def test_density_bins_and_tertiles():
    assert [density_bin(r) for r in (0.0, 0.1, 0.25, 0.5, 1.0, 3.0, 4.0, 9.0)] == [
        0,
        1,
        1,
        2,
        2,
        3,
        3,
        4,
    ]
    bins, cuts = tertile_bins(np.arange(9.0))
    assert bins.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert cuts == pytest.approx([8 / 3, 16 / 3])


def test_penultimate_features_are_the_classifier_input():
    torch.manual_seed(0)
    net = CanvasNet().eval()
    x = torch.randn(5, 3, 24, 24)
    features = penultimate_features(net, x, batch_size=2)
    with torch.no_grad():
        expected = net.pool(net.features(x)).flatten(1).double()
    assert torch.allclose(features, expected, atol=1e-6)
    assert features.shape == (5, 64)


def test_distillation_lowers_the_kl_to_the_teacher_on_heldout_images():
    torch.manual_seed(0)
    teacher = CanvasNet().eval()
    # a teacher with confident, input-dependent outputs
    with torch.no_grad():
        teacher.head.weight.mul_(20)
    student = blurpool(copy.deepcopy(teacher)).eval()
    g = torch.Generator().manual_seed(1)
    train = torch.rand(256, 3, 24, 24, generator=g) * 2 - 1
    heldout = torch.rand(64, 3, 24, 24, generator=g) * 2 - 1
    before = mean_kl(teacher, student, heldout)
    assert before > 1e-3

    def epochs(epoch):
        for start in range(0, len(train), 32):
            yield train[start : start + 32]

    history = distill(
        student,
        teacher,
        epochs,
        Schedule(epochs=4, lr=0.05, momentum=0.9, weight_decay=0.0),
        steps_per_epoch=8,
        temperature=2.0,
        device=torch.device("cpu"),
    )
    after = mean_kl(teacher, student, heldout)
    assert after < 0.7 * before
    assert len(history) == 4 and history[-1]["loss"] < history[0]["loss"]
    assert mean_kl(teacher, teacher, heldout) == pytest.approx(0.0, abs=1e-6)
